"""FMA scans: the real two-header-row tracks.csv format, real genres.csv, mp3 audio."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import failures, invoke, scan, shared, tracks, write_audio

from mfs.store import Store

BIO = 'Born in "Brooklyn", NY.\nStill there, mostly.'
# (track_id, genre_top, genres_all, split, subset, artist_id, artist, title, bio, has_audio)
TRACKS = [
    (2, "Hip-Hop", "[21, 811]", "training", "small", 1, "AWOL", "Food", BIO, True),
    (5, "Hip-Hop", "[21]", "validation", "small", 1, "AWOL", "This World", "", True),
    (10, "Pop", "[10]", "test", "small", 6, "Kurt Vile", "Freeway", "", True),
    (140, "Folk", "[17]", "training", "small", 54, "Alec K. Redfearn", "Queen Of The Wires",
     "", False),
    (148, "", "[]", "training", "small", 56, "Ariel Pink", "Blackout 2", "", True),
    (666, "Rock", "[12, 25]", "training", "medium", 99, "Someone", "Not In Small", "", False),
]


def write_tracks_csv(path: Path) -> None:
    """tracks.csv exactly as FMA ships it: pandas' CSV of a frame with MultiIndex columns."""
    columns = pd.MultiIndex.from_tuples([
        ("album", "title"), ("artist", "bio"), ("artist", "id"), ("artist", "name"),
        ("set", "split"), ("set", "subset"), ("track", "genre_top"), ("track", "genres_all"),
        ("track", "title")])
    data = [[f"Album {t[0]}", t[8] or None, t[5], t[6], t[3], t[4], t[1] or None, t[2], t[7]]
            for t in TRACKS]
    frame = pd.DataFrame(data, columns=columns,
                         index=pd.Index([t[0] for t in TRACKS], name="track_id"))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)


def genre_titles() -> dict[int, str]:
    with open(shared("fma-metadata") / "genres.csv", newline="") as handle:
        return {int(row["genre_id"]): row["title"] for row in csv.DictReader(handle)}


@pytest.fixture
def fma(tmp_path: Path) -> Path:
    """fma_small/NNN/NNNNNN.mp3 beside fma_metadata/{tracks,genres}.csv; returns fma_small."""
    metadata = tmp_path / "fma_metadata"
    write_tracks_csv(metadata / "tracks.csv")
    shutil.copy(shared("fma-metadata") / "genres.csv", metadata / "genres.csv")
    root = tmp_path / "fma_small"
    for track_id, *_, has_audio in TRACKS:
        if has_audio:
            write_audio(root / f"{track_id // 1000:03d}" / f"{track_id:06d}.mp3",
                        seconds=1.0, channels=2 if track_id == 10 else 1,
                        freq=200.0 + track_id, format="MP3")
    write_audio(root / "000" / "000003.mp3", freq=303.0, format="MP3")  # not in tracks.csv
    write_audio(root / "000" / "readme.mp3", freq=304.0, format="MP3")  # not an FMA name
    return root


def test_the_fixture_is_the_real_tracks_csv_format(fma: Path) -> None:
    text = (fma.parent / "fma_metadata" / "tracks.csv").read_text()
    lines = text.splitlines()
    assert lines[0].startswith(",album,artist,artist,artist,set,set,track,track,track")
    assert lines[2].startswith("track_id,,,")
    frame = pd.read_csv(fma.parent / "fma_metadata" / "tracks.csv", index_col=0, header=[0, 1])
    assert frame.loc[2, ("artist", "bio")] == BIO


def test_fma_scan_ids_labels_and_listed_tracks_without_audio(fma: Path, store: Store) -> None:
    summary = scan(store, "fma", "fma", fma)
    found = tracks(store, "fma")
    titles = genre_titles()
    # 666 is a medium track: the fma_small folder is not expected to hold it.
    assert set(found) == {"fma:2", "fma:3", "fma:5", "fma:10", "fma:140", "fma:148"}
    assert summary["missing"] == 1

    food = found["fma:2"]
    assert food["status"] == "ok" and food["path"] == "000/000002.mp3"
    assert (food["format"], food["sample_rate"], food["channels"]) == ("mp3", 22050, 1)
    assert food["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert food["genre"] == "Hip-Hop"
    assert food["genres"] == [titles[21], titles[811]] == ["Hip-Hop", "Hip-Hop Beats"]
    assert food["genre_levels"] == [1, 2]  # genres.csv: 811's parent is 21, a root
    assert (food["split"], food["subset"]) == ("train", "small")
    assert (food["artist"], food["artist_id"], food["title"], food["album"]) == (
        "AWOL", "1", "Food", "Album 2")

    assert found["fma:5"]["split"] == "validation"
    assert (found["fma:10"]["split"], found["fma:10"]["channels"]) == ("test", 2)
    assert found["fma:10"]["genres"] == [titles[10]]

    listed = found["fma:140"]
    assert (listed["status"], listed["path"], listed["genre"]) == ("missing", None, "Folk")
    assert listed["split"] == "train" and listed["status_reason"]

    unlabelled = found["fma:148"]
    assert (unlabelled["status"], unlabelled["genre"], unlabelled["genres"]) == ("ok", None, [])
    unlisted = found["fma:3"]
    assert (unlisted["status"], unlisted["genre"], unlisted["split"]) == ("ok", None, None)

    assert [(f["path"], f["error_class"]) for f in failures(store)] == [
        ("000/readme.mp3", "UnexpectedFile")]


def test_explicit_metadata_folder_and_rescan(fma: Path, tmp_path: Path, store: Store) -> None:
    elsewhere = tmp_path / "meta-elsewhere"
    shutil.move(fma.parent / "fma_metadata", elsewhere)
    with pytest.raises(FileNotFoundError, match="--metadata"):
        scan(store, "fma", "fma", fma)
    scan(store, "fma", "fma", fma, metadata=elsewhere)
    first = tracks(store, "fma")
    summary = scan(store, "fma")  # rescan as registered, metadata folder remembered
    assert summary["unchanged"] == 5 and summary["new"] == 0
    again = tracks(store, "fma")
    assert set(again) == set(first)
    assert again["fma:140"]["status"] == "missing"
    assert again["fma:2"]["genres"] == first["fma:2"]["genres"]


def physical_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


@pytest.mark.parametrize(("bad_line", "expected"), [
    ("999,Album,,1,X,training,small,Rock,[12],Title,extra", "expected 10 fields, got 11"),
    ("999,Album,,1,X,training,small", "expected 10 fields, got 7"),
    ('999,Album,,1,X,training,small,Rock,"[12,",Title', "genres_all"),
    ("999,Album,,1,X,training,small,Rock,[twelve],Title", "genres_all"),
    ('999,Album,,1,X,training,small,Rock,"{12: 1}",Title', "genres_all"),
])
def test_malformed_tracks_csv_names_file_and_line(fma: Path, store: Store, bad_line: str,
                                                  expected: str) -> None:
    path = fma.parent / "fma_metadata" / "tracks.csv"
    line = physical_lines(path) + 1
    with open(path, "a") as handle:
        handle.write(bad_line + "\n")
        handle.write("1000,Album,,1,X,training,small,Rock,[12],Title\n")
    with pytest.raises(ValueError) as error:
        scan(store, "fma", "fma", fma)
    assert f"{path}:{line}" in str(error.value)
    assert expected in str(error.value)
    assert store.libraries() == []


@pytest.mark.parametrize("damage", ["unclosed quote", "not utf-8", "missing column", "empty"])
def test_damaged_tracks_csv_is_one_clear_cli_error(fma: Path, tmp_path: Path,
                                                   damage: str) -> None:
    path = fma.parent / "fma_metadata" / "tracks.csv"
    text = path.read_bytes()
    line = physical_lines(path) + 1
    if damage == "unclosed quote":
        path.write_bytes(text + b'1000,"Album,,1,X,training,small,Rock,[12],Title\n')
    elif damage == "not utf-8":
        path.write_bytes(text + b"1000,Caf\xe9,,1,X,training,small,Rock,[12],Title\n")
    elif damage == "missing column":
        path.write_bytes(text.replace(b"genre_top", b"genre_tip", 1))
    else:
        path.write_bytes(b"")
    args = ("scan", str(fma), "--kind", "fma", "--name", "fma", "--store", str(tmp_path / "s"))
    code, _, stderr = invoke(*args)
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:") and str(path) in lines[0]
    if damage in ("unclosed quote", "not utf-8"):
        assert f"{path}:{line}:" in lines[0]
