"""GTZAN scans: real excerpts and full .au files, IDs, labels, headers and split lists."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf
from conftest import failures, scan, shared, tracks, write_audio

from mfs.libraries.gtzan import SHIPPED_SPLITS, read_split_lists
from mfs.store import Store

SHIPPED = read_split_lists(SHIPPED_SPLITS)

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
          "reggae", "rock")
SPLIT_FILES = {"train_filtered.txt": "train", "valid_filtered.txt": "validation",
               "test_filtered.txt": "test"}


def expected_splits(split_dir: Path) -> dict[str, str]:
    """Read the published split lists the plain way: `genre/genre.000NN.wav` → stem."""
    splits = {}
    for name, split in SPLIT_FILES.items():
        for line in (split_dir / name).read_text().split():
            splits[Path(line).stem] = split
    return splits


def test_real_gtzan_excerpts_with_published_splits(store: Store) -> None:
    root = shared("gtzan-excerpts/genres")
    split_dir = shared("gtzan-musicnn-taggrams/splits")
    summary = scan(store, "gtzan", "gtzan", root, split_dir=split_dir)
    assert summary["tracks"] == summary["new"] == 100
    found = tracks(store, "gtzan")
    assert set(found) == {f"gtzan:{g}.{i:05d}" for g in GENRES for i in range(10)}
    splits = expected_splits(split_dir)
    for track_id, row in found.items():
        stem = track_id.split(":", 1)[1]
        genre = stem.split(".")[0]
        assert row["status"] == "ok", row["status_reason"]
        assert (row["genre"], row["genres"]) == (genre, [genre])
        assert row["path"] == f"{genre}/{stem}.flac"
        assert (row["format"], row["sample_rate"], row["channels"]) == ("flac", 22050, 1)
        assert row["duration_s"] == pytest.approx(sf.info(root / row["path"]).duration)
        assert 14.5 <= row["duration_s"] <= 20.5
        assert row["split"] == splits.get(stem)
        assert row["library_kind"] == "gtzan" and row["library_root"] == str(root.resolve())
        assert len(row["fingerprint"]) == 32 and row["file_size"] > 0
    # The fault-filtered lists keep 93 of these 100 clips; the other 7 have no split.
    by_split = [row["split"] for row in found.values()]
    assert {s: by_split.count(s) for s in ("train", "validation", "test", None)} == {
        "train": 38, "validation": 51, "test": 4, None: 7}
    assert found["gtzan:blues.00000"]["split"] == "validation"
    assert found["gtzan:pop.00000"]["split"] == "test"
    assert found["gtzan:jazz.00000"]["split"] == "train"
    assert failures(store) == []


def test_real_gtzan_full_au_files(store: Store) -> None:
    root = shared("gtzan-full/genres")
    scan(store, "full", "gtzan", root)
    found = tracks(store, "full")
    assert set(found) == {f"full:{g}.00000" for g in GENRES}
    for track_id, row in found.items():
        genre = track_id.split(":")[1].split(".")[0]
        assert row["status"] == "ok"
        assert (row["genre"], row["format"], row["path"]) == (genre, "au",
                                                              f"{genre}/{genre}.00000.au")
        assert (row["sample_rate"], row["channels"]) == (22050, 1)
        assert row["duration_s"] == pytest.approx(30.0, abs=0.7)
        # No --split-dir: the fault-filtered lists shipped with mfs (faulty tracks: none)
        assert row["split"] == SHIPPED.get(track_id.split(":")[1])


def test_shipped_split_lists_are_the_published_fault_filtered_ones() -> None:
    """443 / 197 / 290 tracks, the same lists as the copy beside the musicnn taggrams."""
    published = read_split_lists(shared("gtzan-musicnn-taggrams/splits"))
    assert published == SHIPPED
    assert Counter(SHIPPED.values()) == {"train": 443, "validation": 197, "test": 290}


def test_split_lists_match_on_stem_whatever_the_extension(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "genres"
    for genre, number, ext in [("blues", 12, "au"), ("blues", 29, "flac"), ("rock", 3, "wav"),
                               ("rock", 4, "wav")]:
        write_audio(root / genre / f"{genre}.{number:05d}.{ext}", freq=100 + number,
                    **({"format": "AU", "subtype": "PCM_16"} if ext == "au" else {}))
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train_filtered.txt").write_text("blues/blues.00029.wav\n\n")
    (splits / "valid_filtered.txt").write_text("rock/rock.00003.wav\r\n")
    (splits / "test_filtered.txt").write_text(
        "blues/blues.00012.wav\nclassical/classical.00001.wav\n")
    scan(store, "g", "gtzan", root, split_dir=splits)
    found = tracks(store, "g")
    assert {k: v["split"] for k, v in found.items()} == {
        "g:blues.00012": "test", "g:blues.00029": "train", "g:rock.00003": "validation",
        "g:rock.00004": None}
    assert found["g:blues.00012"]["format"] == "au"


def test_files_that_are_not_gtzan_names_are_reported_not_stored(tmp_path: Path,
                                                                 store: Store) -> None:
    root = tmp_path / "genres"
    write_audio(root / "blues" / "blues.00001.wav")
    write_audio(root / "blues" / "my song.wav", freq=300)
    (root / "blues" / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    scan(store, "g", "gtzan", root)
    assert set(tracks(store, "g")) == {"g:blues.00001"}
    assert [(f["path"], f["error_class"]) for f in failures(store)] == [
        ("blues/my song.wav", "UnexpectedFile")]


def test_bad_split_list_is_one_clear_error(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "genres"
    write_audio(root / "blues" / "blues.00001.wav")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train_filtered.txt").write_text("blues/blues.00001.wav\nnot a track\n")
    with pytest.raises(ValueError, match=r"train_filtered\.txt:2"):
        scan(store, "g", "gtzan", root, split_dir=splits)
    with pytest.raises(FileNotFoundError, match="no split lists"):
        scan(store, "g", "gtzan", root, split_dir=tmp_path / "genres")
