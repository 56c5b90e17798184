"""Naming, hashing and planning extractors import no torch (issue 14: `mfs extract` with
nothing to do in under 2 s, of which `import torch` alone took 3 s), and moving the model
families into subpackages (issue 15) left every stored config hash where it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke, write_audio

from mfs.extractors import registry
from mfs.extractors.musicnn.extractor import MusicnnConfig, MusicnnMSD, MusicnnMTT

# The default configs' hashes: a change re-extracts every store, so it must be deliberate.
# fma518 hashes as before versions existed (version 1); musicnn is version 2 (short tracks
# embedded from their real audio only), which was 812edda1a6a3 / b7fdc0a89659 at version 1;
# panns-cnn14 is version 2 (10.25 s windows, bench/bench_cnn.py), 7b6bdc25777c at version 1.
# The transformer, CNN14 and VGGish hashes changed once when their default precision became
# `auto` (bfloat16 where the CPU or GPU computes it natively): their outputs change there.
DEFAULT_HASHES = {
    "fma518": "87e80b470e1c",
    "musicnn-mtt": "24ef45b75cea",
    "musicnn-msd": "c9815d3159cc",
    "panns-cnn14": "9def5d0b3cac",
    "vggish": "6243069017ed",
    "essentia-music": "4808da3cad9e",
    "opensmile-compare": "0654d522babd",
    "opensmile-egemaps": "20f746d0de61",
    "ast": "d56a0d192e33",
    "clap-music": "461dad48e1b7",
    "mert-v1-95m": "ea80f196a94a",
    "mert-v1-330m": "d5ae4063808e",
    "hubert-large": "ff4be37362bd",
    "wav2vec2-large": "0e318bbb8f5f",
    "encodec-24khz": "f65d9676bc6e",
}


def without_torch(code: str) -> str:
    """Run `code` in a fresh interpreter and fail if it imported torch; its stdout."""
    check = "\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    done = subprocess.run([sys.executable, "-c", code + check], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_default_config_hashes_are_those_stored_so_far() -> None:
    assert {name: registry.create(name).config_hash()
            for name in registry.EXTRACTORS} == DEFAULT_HASHES


def test_musicnn_names_its_checkpoint_once() -> None:
    """The class's `checkpoint` is the only place: the config has no model of its own."""
    assert registry.create("musicnn-mtt").config == MusicnnConfig(model=MusicnnMTT.checkpoint)
    assert registry.create("musicnn-msd").config == MusicnnConfig(model=MusicnnMSD.checkpoint)
    with pytest.raises(TypeError):
        MusicnnConfig()  # type: ignore[call-arg]


def test_specs_and_hashes_import_no_torch() -> None:
    """Every registered extractor's spec, config hash, outputs, windowing and availability."""
    out = without_torch(
        "from mfs.extractors import registry\n"
        "for name in registry.EXTRACTORS:\n"
        "    e = registry.create_from_spec(name)\n"
        "    e.outputs, e.windowing, e.sample_rate, e.unavailable_reason(), e.model_files()\n"
        "    print(name, e.config_hash())\n"
        "print(registry.create_from_spec('fma518:hop_length=256').config_hash())\n")
    *hashes, other = out.splitlines()
    assert dict(line.split() for line in hashes) == DEFAULT_HASHES
    assert other not in DEFAULT_HASHES.values()


def test_extract_with_nothing_missing_imports_no_torch(tmp_path: Path) -> None:
    """`mfs extract` on a library whose features are all stored: checks, rescan, plan."""
    write_audio(tmp_path / "music" / "one.wav", seconds=1.0, freq=700)
    store = str(tmp_path / "store")
    assert invoke("scan", str(tmp_path / "music"), "--kind", "folder", "--name", "lib",
                  "--store", store)[0] == 0
    code, out, err = invoke("extract", "lib", "-e", "fma518", "--store", store)
    assert code == 0 and "fma518: 1 extracted" in out, out + err
    out = without_torch(
        "import sys\nfrom mfs.cli import main\n"
        f"sys.argv = ['mfs', 'extract', 'lib', '-e', 'fma518', '--store', {store!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n")
    assert "fma518: 0 extracted" in out and "nothing missing" in out
