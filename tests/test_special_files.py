"""Files that are not plain audio files: named pipes and other special files must not hang a
scan, and empty files are unreadable, not duplicates of each other."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_mfs, write_audio


def scan_failures(store: Path, library: str) -> dict[str, dict]:
    """The library's latest scan failures by path, read through `mfs sql` as a user would."""
    result = run_mfs("sql", "SELECT path, track_id, error_class, reason FROM failures_latest "
                     f"WHERE library = '{library}'", "--format", "json", "--store", str(store))
    assert result.returncode == 0, result.stderr
    return {row["path"]: row for row in json.loads(result.stdout)}


def test_a_fifo_is_skipped_with_a_failure_not_waited_on(tmp_path: Path) -> None:
    root, store = tmp_path / "music", tmp_path / "store"
    write_audio(root / "good.wav")
    os.mkfifo(root / "pipe.mp3")
    os.mkfifo(root / "genres-pipe.flac")
    (root / "link.ogg").symlink_to(root / "pipe.mp3")
    result = run_mfs("scan", str(root), "--kind", "folder", "--name", "mine",
                     "--store", str(store), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1 tracks" in result.stdout and "3 other problems" in result.stdout
    found = scan_failures(store, "mine")
    assert set(found) == {"pipe.mp3", "genres-pipe.flac", "link.ogg"}
    for path, failure in found.items():
        assert failure["error_class"] == "NotARegularFile"
        assert failure["reason"] == f"{path} is a named pipe (FIFO), not a regular file; skipped"
    again = run_mfs("scan", "--name", "mine", "--store", str(store), timeout=60)
    assert again.returncode == 0, again.stderr
    assert not (store / ".lock").exists()


def test_a_fifo_in_a_gtzan_library_is_skipped(tmp_path: Path) -> None:
    root, store = tmp_path / "genres", tmp_path / "store"
    write_audio(root / "blues" / "blues.00000.wav")
    os.mkfifo(root / "blues" / "blues.00001.wav")
    result = run_mfs("scan", str(root), "--kind", "gtzan", "--name", "g", "--store", str(store),
                     timeout=60)
    assert result.returncode == 0, result.stderr
    assert scan_failures(store, "g")["blues/blues.00001.wav"]["error_class"] == "NotARegularFile"


def test_empty_files_are_unreadable_not_duplicates(tmp_path: Path) -> None:
    root, store = tmp_path / "music", tmp_path / "store"
    write_audio(root / "good.wav")
    (root / "a.mp3").write_bytes(b"")
    (root / "b" / "c.flac").parent.mkdir()
    (root / "b" / "c.flac").write_bytes(b"")
    result = run_mfs("scan", str(root), "--kind", "folder", "--name", "mine",
                     "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "2 unreadable, 0 duplicates" in result.stdout
    found = scan_failures(store, "mine")
    assert {path: (f["error_class"], f["track_id"], f["reason"]) for path, f in found.items()} == {
        "a.mp3": ("AudioError", None, "a.mp3: empty file (0 bytes)"),
        "b/c.flac": ("AudioError", None, "b/c.flac: empty file (0 bytes)")}


def test_a_track_replaced_by_a_fifo_fails_its_extraction(tmp_path: Path) -> None:
    root, store = tmp_path / "music", tmp_path / "store"
    write_audio(root / "good.wav")
    write_audio(root / "later-a-pipe.wav", freq=700)
    assert run_mfs("scan", str(root), "--kind", "folder", "--name", "mine",
                   "--store", str(store)).returncode == 0
    (root / "later-a-pipe.wav").unlink()
    os.mkfifo(root / "later-a-pipe.wav")
    result = run_mfs("extract", "mine", "--extractor", "energy", "--no-rescan",
                     "--store", str(store), timeout=180,
                     env={"PYTHONPATH": str(Path(__file__).parent),
                          "MFS_EXTRACTORS": "energy=energy_extractor:EnergyExtractor"})
    assert result.returncode == 0, result.stderr
    assert "energy: 1 extracted, 1 failed" in result.stdout
    failed = run_mfs("sql", "SELECT reason FROM failures WHERE stage = 'energy'",
                     "--format", "json", "--store", str(store))
    [row] = json.loads(failed.stdout)
    assert row["reason"].endswith("later-a-pipe.wav: not a regular file (a FIFO, socket or device)")
