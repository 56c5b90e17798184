"""Damaged MP3s: libmpg123 (libsndfile's MP3 decoder) prints its complaints straight to
file descriptor 2. They belong in the failure reason, not on the user's terminal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import run_mfs, write_audio

DECODER = "[src/libmpg123/"
ENERGY = {"PYTHONPATH": str(Path(__file__).parent),
          "MFS_EXTRACTORS": "energy=energy_extractor:EnergyExtractor"}


def damaged_mp3s(root: Path) -> None:
    """`junk.mp3`: noise after the first frames, which no decoder opens; `zeros.mp3`: its
    last two thirds zeroed, which opens (the scan keeps it) but fails to decode."""
    good = write_audio(root / "tmp.mp3", seconds=3.0, freq=440).read_bytes()
    (root / "tmp.mp3").unlink()
    noise = np.random.default_rng(0).bytes(len(good) - 400)
    (root / "junk.mp3").write_bytes(good[:400] + noise)
    third = len(good) // 3
    (root / "zeros.mp3").write_bytes(good[:third] + b"\0" * (len(good) - third))
    write_audio(root / "good.wav")


def latest_failures(store: Path) -> dict[tuple[str, str], str]:
    result = run_mfs("sql", "SELECT path, stage, reason FROM failures_latest", "--format", "json",
                     "--store", str(store))
    return {(Path(r["path"]).name, r["stage"]): r["reason"] for r in json.loads(result.stdout)}


def test_decoder_messages_go_to_the_failure_reason(tmp_path: Path) -> None:
    root, store = tmp_path / "music", tmp_path / "store"
    damaged_mp3s(root)
    scan = run_mfs("scan", str(root), "--kind", "folder", "--name", "mine",
                   "--store", str(store))
    assert scan.returncode == 0 and scan.stderr == ""
    assert "3 new" in scan.stdout and "1 unreadable" in scan.stdout
    extract = run_mfs("extract", "mine", "--extractor", "energy", "--store", str(store),
                      env=ENERGY)
    assert extract.returncode == 0, extract.stderr
    assert "energy: 1 extracted, 1 failed" in extract.stdout
    for output in (scan.stdout, extract.stdout, extract.stderr):
        assert DECODER not in output and "Illegal Audio-MPEG-Header" not in output

    reasons = latest_failures(store)
    assert set(reasons) == {("junk.mp3", "scan"), ("zeros.mp3", "energy")}
    for reason in reasons.values():
        assert f"(decoder said: {DECODER}" in reason and "\n" not in reason
