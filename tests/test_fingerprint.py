"""Folder-library IDs come from the audio payload: retagging a file keeps its fingerprint,
changing its audio changes it, and no content makes it raise."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import mutagen
import mutagen.apev2
import numpy as np
import pytest
import soundfile as sf
from conftest import content_id, feature_rows, rows, scan, tone, tracks
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TALB, TCON, TIT2, TPE1
from mutagen.mp4 import MP4, MP4Cover

from mfs.libraries.fingerprint import fingerprint
from mfs.store import Store

# name → (file extension, soundfile arguments or the MP4 layout, sample rate)
FORMATS = {
    "mp3": ("mp3", {"format": "MP3"}, 22050),
    "flac": ("flac", {"format": "FLAC"}, 22050),
    "vorbis": ("ogg", {"format": "OGG", "subtype": "VORBIS"}, 22050),
    "opus": ("opus", {"format": "OGG", "subtype": "OPUS"}, 48000),
    "wav": ("wav", {"format": "WAV", "subtype": "PCM_16"}, 22050),
    "aiff": ("aiff", {"format": "AIFF", "subtype": "PCM_16"}, 22050),
    "m4a": ("m4a", "moov last", 22050),  # as PyAV writes it: `mdat` first
    "m4a-faststart": ("m4a", "moov first", 22050),  # a tag that grows moves `mdat`
}
ID3_FRAMES = {"artist": TPE1, "album": TALB, "title": TIT2, "genre": TCON}
MP4_KEYS = {"artist": "\xa9ART", "album": "\xa9alb", "title": "\xa9nam", "genre": "\xa9gen"}
TAGS = {"artist": "Ana Bee", "album": "Tests", "title": "Tone", "genre": "Jazz"}
PICTURE = b"\xff\xd8\xff\xe0" + np.random.default_rng(7).bytes(150_000)  # spans many pages


def encode(path: Path, fmt: str, samples: np.ndarray | None = None) -> Path:
    """Write `samples` (default: conftest's tone) in format `fmt`; m4a through PyAV, as
    conftest's write_m4a does, here with the samples given and either MP4 layout."""
    _ext, args, rate = FORMATS[fmt]
    samples = tone(1.0, rate, 1, 440.0) if samples is None else samples
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(args, dict):
        sf.write(path, samples, rate, **args)
        return path
    import av

    options = {"movflags": "faststart"} if args == "moov first" else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.T.copy(), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def set_tags(path: Path, fields: dict[str, str], picture: bytes | None = None,
             padding: int = 1024) -> None:
    """Replace the file's tags with `fields` and maybe a front cover, saved with `padding`
    bytes of padding, the way Picard (which uses mutagen) writes them."""
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    if isinstance(audio.tags, ID3):  # MP3, and WAV and AIFF's ID3 chunk
        for key, value in fields.items():
            audio.tags.add(ID3_FRAMES[key](encoding=3, text=value))
        if picture:
            audio.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=picture))
    elif isinstance(audio, MP4):
        for key, value in fields.items():
            audio.tags[MP4_KEYS[key]] = [value]
        if picture:
            audio.tags["covr"] = [MP4Cover(picture, imageformat=MP4Cover.FORMAT_JPEG)]
    else:  # Vorbis comments: FLAC, Ogg Vorbis, Opus
        for key, value in fields.items():
            audio.tags[key] = [value]
        if isinstance(audio, FLAC):
            audio.clear_pictures()
        if picture:
            cover = Picture()
            cover.type, cover.mime, cover.data = 3, "image/jpeg", picture
            if isinstance(audio, FLAC):
                audio.add_picture(cover)
            else:
                audio.tags["metadata_block_picture"] = [base64.b64encode(cover.write()).decode()]
    audio.save(padding=lambda _info: padding)


def remove_tags(path: Path) -> None:
    set_tags(path, {})  # FLAC pictures are blocks of their own
    mutagen.File(path).delete()


def whole_file_digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_retagging_keeps_the_fingerprint(tmp_path: Path, fmt: str) -> None:
    path = encode(tmp_path / f"song.{FORMATS[fmt][0]}", fmt)
    untagged = fingerprint(path)
    steps = {
        "tags added": lambda: set_tags(path, TAGS),
        "tags changed": lambda: set_tags(path, {**TAGS, "title": "A much longer title " * 40}),
        "picture added": lambda: set_tags(path, TAGS, picture=PICTURE),
        "no padding": lambda: set_tags(path, TAGS, picture=PICTURE, padding=0),
        "much padding": lambda: set_tags(path, TAGS, picture=PICTURE, padding=100_000),
        "picture removed": lambda: set_tags(path, {"title": "Tone"}),
        "tags removed": lambda: remove_tags(path),
    }
    seen_bytes = {whole_file_digest(path)}
    for step, retag in steps.items():
        retag()
        seen_bytes.add(whole_file_digest(path))
        assert fingerprint(path) == untagged, f"{fmt}: {step}"
    assert len(seen_bytes) >= 6  # the file's bytes really did change at (nearly) each step


@pytest.mark.parametrize("fmt", FORMATS)
def test_changing_one_sample_changes_the_fingerprint(tmp_path: Path, fmt: str) -> None:
    _ext, _args, rate = FORMATS[fmt]
    samples = tone(1.0, rate, 1, 440.0)
    first = encode(tmp_path / "first" / f"song.{FORMATS[fmt][0]}", fmt, samples)
    again = encode(tmp_path / "again" / f"song.{FORMATS[fmt][0]}", fmt, samples)
    set_tags(again, TAGS, picture=PICTURE)
    # The same audio encoded twice (Ogg streams get random serial numbers) and tagged: equal.
    assert fingerprint(again) == fingerprint(first)
    samples[len(samples) // 2] = 0.9  # one click, halfway
    changed = encode(tmp_path / "changed" / f"song.{FORMATS[fmt][0]}", fmt, samples)
    assert fingerprint(changed) != fingerprint(first)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cut_or_broken_files_fall_back_to_their_bytes(tmp_path: Path, fmt: str) -> None:
    path = encode(tmp_path / f"song.{FORMATS[fmt][0]}", fmt)
    set_tags(path, TAGS, picture=PICTURE)
    data = path.read_bytes()
    whole = fingerprint(path)
    for keep in (4, 10, 40, 1000, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut-{keep}.{FORMATS[fmt][0]}"
        cut.write_bytes(data[:keep])
        digest = fingerprint(cut)
        assert len(digest) == 32 and digest != whole, (fmt, keep)
        if keep <= 40:  # not even the container's structure: the bytes are hashed
            assert digest == whole_file_digest(cut), (fmt, keep)
    noise = tmp_path / f"noise.{FORMATS[fmt][0]}"
    noise.write_bytes(data[:12] + np.random.default_rng(1).bytes(5000))
    assert fingerprint(noise) == whole_file_digest(noise)


@pytest.mark.parametrize("content", [
    b"", b"ID3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\x00" * 50,
    b"ID3\x04\x00\x00\xff\xff\xff\xff", b"fLaC", b"fLaC\x80\x00\x00\x22", b"OggS",
    b"RIFF\x00\x00\x00\x00WAVE", b"FORM\x00\x00\x00\x00AIFF",
    b"\x00\x00\x00\x08ftyp", b"\x00\x00\x00\x01ftypM4A \xff\xff\xff\xff\xff\xff\xff\xff",
    b"ID3\x03\x00\x00\x00\x00\x00\x00TAG" + b"\x00" * 125,
    b"\xff\xfbAPETAGEX\xd0\x07\x00\x00\xff\xff\xff\x7f" + b"\x00" * 16,
    b"\xff\xfb\x00123456LYRICS200", b"\xff\xfb" + b"3DI\x04\x00\x00\x7f\x7f\x7f\x7f",
])
def test_malformed_headers_never_raise(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.mp3"
    path.write_bytes(content)
    assert fingerprint(path) == whole_file_digest(path)


def test_io_errors_still_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fingerprint(tmp_path / "nowhere.flac")
    with pytest.raises(IsADirectoryError):
        fingerprint(tmp_path)


def id3v24(title: str, footer: bool = False, padding: int = 0) -> bytes:
    """An ID3v2.4 tag written by hand (mutagen writes no footers)."""
    def synchsafe(n: int) -> bytes:
        return bytes((n >> 21 & 0x7F, n >> 14 & 0x7F, n >> 7 & 0x7F, n & 0x7F))

    text = b"\x03" + title.encode()
    body = b"TIT2" + synchsafe(len(text)) + b"\x00\x00" + text + b"\x00" * padding
    flags = b"\x10" if footer else b"\x00"
    tag = b"ID3\x04\x00" + flags + synchsafe(len(body)) + body
    return tag + (b"3DI\x04\x00" + flags + synchsafe(len(body)) if footer else b"")


def test_every_mp3_tag_layout_is_skipped(tmp_path: Path) -> None:
    bare = encode(tmp_path / "bare.mp3", "mp3")
    audio = bare.read_bytes()
    expected = fingerprint(bare)
    id3v1 = b"TAG" + b"Tone".ljust(30, b"\x00") + b"\x00" * 94 + b"\x08"
    fields = b"IND0000210" + b"LYR00011hello world"
    lyrics3 = b"LYRICSBEGIN" + fields + str(11 + len(fields)).zfill(6).encode() + b"LYRICS200"
    ape_items = b"\x04\x00\x00\x00\x00\x00\x00\x00Title\x00Tone"
    ape = (b"APETAGEX" + (2000).to_bytes(4, "little") + (len(ape_items) + 32).to_bytes(4, "little")
           + (1).to_bytes(4, "little") + (0xA0000000).to_bytes(4, "little") + b"\x00" * 8)
    ape = ape + ape_items + ape[:20] + (0x80000000).to_bytes(4, "little") + b"\x00" * 8
    layouts = {
        "two ID3v2 tags and zero padding": id3v24("a") + b"\x00" * 3000 + id3v24("b") + audio,
        "ID3v2.4 with a footer": id3v24("a", footer=True, padding=500) + audio,
        "ID3v1": audio + id3v1,
        "Enhanced TAG and ID3v1": audio + b"TAG+" + b"\x00" * 223 + id3v1,
        "Lyrics3v2 and ID3v1": audio + lyrics3 + id3v1,
        "APEv2 (header and footer) and ID3v1": audio + ape + id3v1,
        "all of them, and an appended ID3v2.4": (id3v24("a") + audio + ape + lyrics3
                                                 + id3v24("z", footer=True) + id3v1),
    }
    for name, content in layouts.items():
        path = tmp_path / "tagged.mp3"
        path.write_bytes(content)
        assert fingerprint(path) == expected, name
    # mutagen's own writers: an APEv2 tag after the audio, then ID3v2.3 and ID3v1.
    path = Path(shutil.copy(bare, tmp_path / "mutagen.mp3"))
    ape_tag = mutagen.apev2.APEv2()
    ape_tag["Title"] = "Tone"
    ape_tag.save(path)
    set_tags(path, TAGS)
    mutagen.File(path).save(v1=2, v2_version=3)
    assert path.read_bytes()[-128:].startswith(b"TAG") and b"APETAGEX" in path.read_bytes()
    assert fingerprint(path) == expected


def test_flac_behind_an_id3_tag_and_riff_iff_text_chunks(tmp_path: Path) -> None:
    flac = encode(tmp_path / "a.flac", "flac")
    tagged = tmp_path / "b.flac"
    tagged.write_bytes(id3v24("a", padding=100) + flac.read_bytes())
    assert fingerprint(tagged) == fingerprint(flac)
    for fmt, chunk, order in (("wav", b"LIST", "little"), ("aiff", b"NAME", "big")):
        plain = encode(tmp_path / f"plain.{fmt}", fmt)
        data = bytearray(plain.read_bytes())
        text = b"INFOINAM\x05\x00\x00\x00Tone\x00\x00" if fmt == "wav" else b"A name"
        data[12:12] = chunk + len(text).to_bytes(4, order) + text  # before the format chunk
        data += b"JUNK" + (3).to_bytes(4, order) + b"abc\x00"  # after the audio, padded
        data[4:8] = (len(data) - 8).to_bytes(4, order)
        named = tmp_path / f"named.{fmt}"
        named.write_bytes(bytes(data))
        assert sf.info(named).frames == sf.info(plain).frames  # still a valid file
        assert fingerprint(named) == fingerprint(plain), fmt


def test_retagged_file_keeps_its_track_and_features(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    paths = [encode(root / f"{fmt}.{FORMATS[fmt][0]}", fmt) for fmt in ("flac", "mp3", "m4a")]
    for path in paths:
        set_tags(path, TAGS)
    scan(store, "mine", "folder", root)
    before = {row["path"]: track_id for track_id, row in tracks(store, "mine").items()}
    with store.writing("extract") as writer:
        writer.append_features("toy", "c0", feature_rows(list(before.values())))

    for path in paths:  # Picard adds a cover, fixes the title and the bytes all change
        set_tags(path, {**TAGS, "title": "Tone (2024 remaster)"}, picture=PICTURE)
    summary = scan(store, "mine", "folder", root)
    assert (summary["changed"], summary["new"], summary["missing"]) == (len(paths), 0, 0)
    after = tracks(store, "mine")
    assert {row["path"]: track_id for track_id, row in after.items()} == before
    for path in paths:
        row = after[before[path.name]]
        assert row["track_id"] == content_id("mine", path)
        assert (row["status"], row["title"]) == ("ok", "Tone (2024 remaster)")
        assert row["file_size"] == path.stat().st_size  # the new bytes are on record
    joined = rows(store, "SELECT t.path, t.status FROM toy f JOIN tracks t USING (track_id)")
    assert sorted(r["path"] for r in joined if r["status"] == "ok") == sorted(before)


def test_duplicates_and_broken_links_are_reported_once(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    original = encode(root / "a" / "song.flac", "flac")
    copy = root / "b" / "copy.flac"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    set_tags(copy, TAGS, picture=PICTURE)  # other tags, same audio: still a duplicate
    (root / "gone.mp3").symlink_to(root / "nowhere.mp3")
    for _ in range(3):
        summary = scan(store, "mine", "folder", root)
        assert (summary["duplicate"], summary["problems"], summary["tracks"]) == (1, 1, 1)
    written = rows(store, "SELECT path, error_class FROM failures ORDER BY path")
    assert written == [{"path": "b/copy.flac", "error_class": "DuplicateAudio"},
                       {"path": "gone.mp3", "error_class": "BrokenSymlink"}]

    # The copy is read on each rescan, so when the original goes it takes over the track.
    (track_id,) = tracks(store, "mine")
    original.unlink()
    summary = scan(store, "mine", "folder", root)
    assert (summary["duplicate"], summary["missing"]) == (0, 0)
    row = tracks(store, "mine")[track_id]
    assert (row["path"], row["status"], row["title"]) == ("b/copy.flac", "ok", "Tone")
    # A new copy is a new problem: reported, once.
    shutil.copy(copy, root / "c.flac")
    scan(store, "mine", "folder", root)
    scan(store, "mine", "folder", root)
    assert rows(store, "SELECT count(*) AS n FROM failures")[0]["n"] == 3
