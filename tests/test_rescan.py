"""Rescans are incremental: unchanged files are not opened, changed ones are re-read,
vanished ones are kept as missing with their features."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import content_id, feature_rows, rows, scan, tracks, write_audio

import mfs.libraries.scan
from mfs.store import Store


def same_size_garbage(path: Path) -> None:
    """Overwrite a file with junk of the same size and put its mtime back: a file that
    looks unchanged. Any rescan that opened it would see it is not audio any more."""
    stat = path.stat()
    path.write_bytes(os.urandom(stat.st_size))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def gtzan_tree(root: Path) -> list[Path]:
    return [write_audio(root / g / f"{g}.{i:05d}.wav", freq=200 + 10 * i + len(g))
            for g in ("blues", "rock") for i in range(3)]


@pytest.mark.parametrize("kind", ["gtzan", "folder"])
def test_unchanged_files_are_not_opened(tmp_path: Path, store: Store, kind: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "genres"
    files = gtzan_tree(root)
    scan(store, "lib", kind, root)
    before = tracks(store, "lib")
    for path in files:
        same_size_garbage(path)

    opened = []
    monkeypatch.setattr(mfs.libraries.scan, "fingerprint", lambda p: opened.append(p))
    monkeypatch.setattr(mfs.libraries.scan, "probe", lambda p: opened.append(p))
    monkeypatch.setattr("mutagen.File", lambda p, **kw: opened.append(p))
    summary = scan(store, "lib", kind, root)
    assert opened == []
    assert summary["unchanged"] == len(files) and summary["new"] == summary["changed"] == 0
    after = tracks(store, "lib")
    assert set(after) == set(before)
    for track_id, row in after.items():
        old = before[track_id]
        assert row["status"] == "ok"
        assert (row["fingerprint"], row["duration_s"], row["genre"]) == (
            old["fingerprint"], old["duration_s"], old["genre"])
        assert row["scanned_at"] > old["scanned_at"]


def test_changed_file_is_read_again_and_keeps_its_gtzan_id(tmp_path: Path,
                                                           store: Store) -> None:
    root = tmp_path / "genres"
    files = gtzan_tree(root)
    scan(store, "lib", "gtzan", root)
    before = tracks(store, "lib")
    write_audio(files[0], seconds=1.5, rate=16000, freq=999)
    summary = scan(store, "lib", "gtzan", root)
    assert (summary["changed"], summary["unchanged"]) == (1, len(files) - 1)
    row = tracks(store, "lib")["lib:blues.00000"]
    assert row["fingerprint"] != before["lib:blues.00000"]["fingerprint"]
    assert (row["duration_s"], row["sample_rate"]) == (pytest.approx(1.5), 16000)


def test_changed_file_in_a_folder_library_gets_the_new_content_id(tmp_path: Path,
                                                                  store: Store) -> None:
    root = tmp_path / "music"
    path = write_audio(root / "song.wav", freq=400)
    scan(store, "mine", "folder", root)
    old_id = content_id("mine", path)
    write_audio(path, seconds=0.7, freq=401)
    scan(store, "mine", "folder", root)
    found = tracks(store, "mine")
    assert found[content_id("mine", path)]["duration_s"] == pytest.approx(0.7, abs=1e-3)
    assert found[content_id("mine", path)]["path"] == "song.wav"
    assert old_id != content_id("mine", path)


@pytest.mark.parametrize("kind", ["gtzan", "folder"])
def test_vanished_file_is_marked_missing_and_keeps_its_features(tmp_path: Path, store: Store,
                                                                 kind: str) -> None:
    root = tmp_path / "genres"
    files = gtzan_tree(root)
    scan(store, "lib", kind, root)
    gone = next(r for r in tracks(store, "lib").values() if r["path"] == "rock/rock.00001.wav")
    with store.writing("extract") as writer:
        writer.append_features("toy", "c0", feature_rows(list(tracks(store, "lib"))))
    files[4].unlink()

    summary = scan(store, "lib", kind, root)
    assert summary["missing"] == 1
    found = tracks(store, "lib")
    assert len(found) == len(files)
    row = found[gone["track_id"]]
    assert (row["status"], row["path"], row["fingerprint"]) == (
        "missing", "rock/rock.00001.wav", gone["fingerprint"])
    assert row["status_reason"]
    joined = rows(store, "SELECT t.status, f.emb_mean FROM toy f JOIN tracks t USING "
                         "(track_id) WHERE track_id = ?", [gone["track_id"]])
    assert joined == [{"status": "missing", "emb_mean": pytest.approx([0.5, 0.5])}]
    assert rows(store, "SELECT count(*) AS n FROM features")[0]["n"] == len(files)

    # It comes back: ok again, under the same ID.
    write_audio(files[4], freq=200 + 10 * 1 + len("rock"))
    summary = scan(store, "lib", kind, root)
    assert tracks(store, "lib")[gone["track_id"]]["status"] == "ok"
    assert summary["missing"] == 0
