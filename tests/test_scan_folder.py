"""Folder scans: any depth, every common format, tags as labels, content-derived IDs."""

from __future__ import annotations

import shutil
from pathlib import Path

import mutagen
import pytest
from conftest import content_id, failures, scan, tracks, write_audio, write_m4a

from mfs.store import Store

# path → (writer arguments, sample rate, channels); one file per format, at several depths.
FILES = {
    "a.mp3": ({"format": "MP3"}, 22050, 1),
    "rock/b.flac": ({}, 44100, 2),
    "rock/live/c.ogg": ({"format": "OGG", "subtype": "VORBIS"}, 22050, 2),
    "jazz/1970/side a/d.wav": ({"subtype": "PCM_16"}, 16000, 1),
    "jazz/1970/side a/deeper/still/e.opus": ({"format": "OGG", "subtype": "OPUS"}, 48000, 1),
    "x/y/z/w/v/f.aiff": ({"format": "AIFF"}, 22050, 1),
    "g.m4a": (None, 22050, 1),
    "Upper/H.FLAC": ({"format": "FLAC"}, 22050, 1),
}
TAGS = {"artist": "Ana Bee", "album": "Tests, Vol. 1", "title": "Tone", "genre": "Jazz"}


def write_library(root: Path) -> dict[str, Path]:
    written = {}
    for number, (rel, (args, rate, channels)) in enumerate(FILES.items()):
        path = root / rel
        if args is None:
            write_m4a(path, rate=rate, freq=300.0 + number)
        else:
            write_audio(path, seconds=0.5, rate=rate, channels=channels, freq=300.0 + number,
                        **args)
        written[rel] = path
    return written


def tag(path: Path, **tags: str) -> None:
    """Write tags the way a tagger would: easy keys where mutagen has them, ID3 otherwise."""
    audio = mutagen.File(path, easy=True)
    if audio.tags is None:
        audio.add_tags()
    try:
        for key, value in tags.items():
            audio.tags[key] = value
        audio.save()
    except TypeError:  # WAV and AIFF carry plain ID3 frames
        from mutagen.id3 import TALB, TCON, TIT2, TPE1

        frames = {"artist": TPE1, "album": TALB, "title": TIT2, "genre": TCON}
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        for key, value in tags.items():
            audio.tags.add(frames[key](encoding=3, text=value))
        audio.save()


def test_every_format_at_any_depth_with_tags(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    written = write_library(root)
    for path in written.values():
        tag(path, **TAGS)
    (root / "rock" / "cover.jpg").write_bytes(b"\xff\xd8\xff not audio")
    (root / "notes.txt").write_text("not audio either")
    summary = scan(store, "mine", "folder", root)
    assert summary["new"] == len(FILES) == summary["tracks"]
    found = {row["path"]: row for row in tracks(store, "mine").values()}
    assert set(found) == set(FILES)
    for rel, (_args, rate, channels) in FILES.items():
        row = found[rel]
        assert row["status"] == "ok", (rel, row["status_reason"])
        assert row["track_id"] == content_id("mine", written[rel])
        assert row["format"] == Path(rel).suffix.lower().lstrip(".")
        assert (row["sample_rate"], row["channels"]) == (rate, channels), rel
        assert row["duration_s"] == pytest.approx(0.5, abs=0.06), rel
        labels = {k: row[k] for k in TAGS}
        assert labels == TAGS, rel
        assert row["genres"] == ["Jazz"]
        assert row["split"] is None and row["library_kind"] == "folder"
    assert failures(store) == []


def test_untagged_files_have_null_labels(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    write_audio(root / "plain.wav")
    write_audio(root / "plain.flac", freq=500)
    tag(write_audio(root / "partly.mp3", freq=600, format="MP3"), title="Only A Title")
    scan(store, "mine", "folder", root)
    found = {row["path"]: row for row in tracks(store, "mine").values()}
    for rel in ("plain.wav", "plain.flac"):
        assert [found[rel][k] for k in TAGS] == [None] * 4
        assert found[rel]["genres"] == []
    assert found["partly.mp3"]["title"] == "Only A Title"
    assert found["partly.mp3"]["artist"] is None


def test_tags_of_a_file_whose_extension_lies(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    flac = write_audio(root / "real.flac", freq=640)
    tag(flac, **TAGS)
    flac.rename(root / "really a flac.mp3")
    scan(store, "mine", "folder", root)
    (row,) = tracks(store, "mine").values()
    assert row["status"] == "ok" and row["format"] == "mp3"
    assert {k: row[k] for k in TAGS} == TAGS


def test_renaming_and_moving_keep_the_id(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    first = write_audio(root / "inbox" / "track 1.flac", freq=310)
    second = write_audio(root / "inbox" / "track 2.flac", freq=320)
    scan(store, "mine", "folder", root)
    before = {row["path"]: track_id for track_id, row in tracks(store, "mine").items()}

    (root / "Artist" / "Album").mkdir(parents=True)
    first.rename(root / "Artist" / "Album" / "01 renamed.flac")
    second.rename(root / "inbox" / "renamed too.flac")
    summary = scan(store, "mine", "folder", root)
    after = tracks(store, "mine")
    assert set(after) == set(before.values())  # same IDs, nothing missing, nothing new
    assert after[before["inbox/track 1.flac"]]["path"] == "Artist/Album/01 renamed.flac"
    assert after[before["inbox/track 2.flac"]]["path"] == "inbox/renamed too.flac"
    assert {row["status"] for row in after.values()} == {"ok"}
    assert summary["missing"] == 0


def test_exact_duplicates_are_reported_not_stored_twice(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    original = write_audio(root / "a" / "song.flac", freq=330)
    (root / "b").mkdir()
    shutil.copy(original, root / "b" / "copy of song.flac")
    shutil.copy(original, root / "c.flac")
    write_audio(root / "d.flac", freq=331)  # same format and length, different audio
    summary = scan(store, "mine", "folder", root)
    found = tracks(store, "mine")
    assert len(found) == 2 and summary["duplicate"] == 2
    kept = found[content_id("mine", original)]
    assert kept["path"] == "a/song.flac"  # the first in walk order is the one stored
    problems = failures(store)
    assert [(f["path"], f["error_class"], f["track_id"]) for f in problems] == [
        ("b/copy of song.flac", "DuplicateAudio", kept["track_id"]),
        ("c.flac", "DuplicateAudio", kept["track_id"])]
    assert all("a/song.flac" in f["reason"] for f in problems)
