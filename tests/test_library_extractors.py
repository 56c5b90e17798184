"""openSMILE, Essentia and HEAR API modules as extractors (issue 17): real clips, names and
dimensions, one-line errors, and each through `mfs extract` as a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, run_mfs, shared, write_audio

from mfs.extractors import registry
from mfs.extractors.essentia.layout import NUMERIC, STRINGS
from mfs.extractors.pipeline import decode_ahead
from mfs.store import Store
from mfs.store.views import view_name

CLIPS = ("blues/blues.00000.flac", "jazz/jazz.00001.flac")

# A HEAR 2021 module with a real, deterministic computation: log-mel-like frames (log
# power of 32 bands of an 8 kHz rFFT, 25 ms hop) through a fixed random projection.
HEAR_MODULE = '''
import torch

class Model(torch.nn.Module):
    sample_rate = 8000
    scene_embedding_size = 6
    timestamp_embedding_size = 5

    def __init__(self, scale):
        super().__init__()
        generator = torch.Generator().manual_seed(17)
        self.register_buffer("projection", scale * torch.randn(32, 5, generator=generator))

def load_model(model_file_path=""):
    scale = float(open(model_file_path).read()) if model_file_path else 1.0
    return Model(scale)

def _frames(audio, model):
    frames = audio.unfold(1, 256, 200)
    power = torch.fft.rfft(frames * torch.hann_window(256), dim=-1).abs() ** 2
    bands = power[..., :128].reshape(*power.shape[:2], 32, 4).sum(-1)
    return torch.log(bands + 1e-6) @ model.projection

def get_timestamp_embeddings(audio, model):
    embeddings = _frames(audio, model)
    timestamps = torch.arange(embeddings.shape[1]) * 25.0 + 16.0
    return embeddings, timestamps.expand(len(audio), -1)

def get_scene_embeddings(audio, model):
    embeddings = _frames(audio, model)
    return torch.cat([embeddings.mean(1), audio.std(1, keepdim=True)], dim=1)
'''


def blocks_of(clip: Path, rate: int | None):
    blocks = decode_ahead(clip, rate)
    return blocks, blocks.sample_rate


@pytest.mark.parametrize(("name", "dim"), [("opensmile-egemaps", 88),
                                           ("opensmile-compare", 6373)])
def test_opensmile_functionals_on_real_clips(name: str, dim: int) -> None:
    import opensmile

    extractor = registry.create(name)
    assert extractor.unavailable_reason() is None
    (spec,) = extractor.outputs
    assert spec.dim == dim and len(spec.feature_names) == dim
    assert len(set(spec.feature_names)) == dim
    for clip in CLIPS:
        path = shared("gtzan-excerpts/genres") / clip
        blocks, rate = blocks_of(path, extractor.sample_rate)
        got = extractor.embed_track(blocks, rate)["functionals"].numpy()
        assert got.shape == (1, dim) and np.all(np.isfinite(got))
        # The blocks streamed into openSMILE give what opensmile's own whole-signal call does.
        signal = np.concatenate(list(blocks()))
        smile = opensmile.Smile(extractor.feature_set, opensmile.FeatureLevel.Functionals)
        reference = smile.process_signal(signal, rate)
        assert list(reference.columns) == list(spec.feature_names)
        np.testing.assert_allclose(got[0], reference.to_numpy()[0].astype(np.float32),
                                   rtol=1e-5, atol=1e-6)


def test_opensmile_streams_blocks_of_any_size() -> None:
    """A track in many small blocks (as a long track is decoded pass by pass) gives the
    functionals of the whole, unchanged."""
    from mfs.extractors.opensmile.stream import functionals

    path = shared("gtzan-excerpts/genres") / CLIPS[0]
    blocks, rate = blocks_of(path, 16000)
    signal = np.concatenate(list(blocks()))
    whole = functionals("eGeMAPSv02", lambda: iter([signal]), rate)
    pieces = functionals("eGeMAPSv02", lambda: (signal[i:i + 1000]
                                                for i in range(0, len(signal), 1000)), rate)
    np.testing.assert_array_equal(whole, pieces)


def test_essentia_layout_matches_real_pools() -> None:
    """The fixed layout is what MusicExtractor's pool holds for real clips: every kept
    descriptor present with its shape, no other numeric one but the documented drops."""
    extractor = registry.create("essentia-music")
    if extractor.unavailable_reason():
        pytest.skip(extractor.unavailable_reason())
    extractor.load("cpu")
    shapes = dict(NUMERIC)
    for clip in CLIPS:
        pool, _ = extractor.music_extractor()(str(shared("gtzan-excerpts/genres") / clip))
        numeric = {name: np.asarray(pool[name]).shape for name in pool.descriptorNames()
                   if name.split(".")[0] in ("lowlevel", "rhythm", "tonal")
                   and not isinstance(pool[name], str)}
        dropped = {name for name in numeric
                   if name == "rhythm.beats_position" or name.endswith(".icov")}
        assert {n: s for n, s in numeric.items() if n not in dropped} == shapes
        for name, values in STRINGS:
            assert pool[name] in values, name


def test_essentia_music_on_real_clips() -> None:
    extractor = registry.create("essentia-music")
    if extractor.unavailable_reason():
        pytest.skip(extractor.unavailable_reason())
    extractor.load("cpu")
    (spec,) = extractor.outputs
    names = spec.feature_names
    assert list(names) == sorted(names) and len(set(names)) == spec.dim == len(names)
    for wanted in ("lowlevel.mfcc.mean/03", "rhythm.bpm", "lowlevel.mfcc.cov/00-12",
                   "tonal.key_edma.key=F#", "tonal.key_edma.scale=minor"):
        assert wanted in names
    assert not any("icov" in n or "beats_position" in n or n.startswith("metadata")
                   for n in names)
    for clip in CLIPS:
        values, seconds = extractor.embed_file(shared("gtzan-excerpts/genres") / clip)
        vector = values["features"][0]
        assert vector.shape == (spec.dim,) and np.all(np.isfinite(vector))
        assert 10 < seconds < 31
        for descriptor, choices in STRINGS:  # one-hot: exactly one value set per string
            group = [names.index(f"{descriptor}={v}") for v in choices]
            assert sorted(vector[group]) == [0.0] * (len(choices) - 1) + [1.0]


def test_essentia_missing_descriptor_is_nan_not_shifted() -> None:
    from mfs.extractors.essentia.extractor import FEATURE_NAMES, flatten

    pool = {name: np.ones(shape) for name, shape in NUMERIC}
    pool.update({name: values[0] for name, values in STRINGS})
    full = flatten(pool)
    del pool["rhythm.bpm"]
    pool["lowlevel.mfcc.mean"] = np.ones(12)  # a wrong size is missing too
    pool["tonal.chords_key"] = "H"  # not a key essentia names
    partial = flatten(pool)
    gone = {n for n, a, b in zip(FEATURE_NAMES, full, partial, strict=True) if a != b}
    assert all(np.isnan(partial[FEATURE_NAMES.index(n)]) for n in gone)
    assert gone == {"rhythm.bpm", *(f"lowlevel.mfcc.mean/{i:02d}" for i in range(13)),
                    *(f"tonal.chords_key={k}" for k in STRINGS[0][1])}


@pytest.fixture
def hear_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path (and for subprocesses, PYTHONPATH) holding `tiny_hear`."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "tiny_hear.py").write_text(HEAR_MODULE)
    (folder / "not_hear.py").write_text("def load_model(model_file_path=''):\n    return 1\n")
    (folder / "weights.txt").write_text("0.5\n")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_hear_module_as_extractor(hear_path: Path) -> None:
    extractor = registry.create_from_spec(f"hear:tiny_hear:weights={hear_path}/weights.txt")
    assert type(extractor) is registry.extractor_class("hear-tiny_hear")
    assert extractor.name == "hear-tiny_hear" and extractor.unavailable_reason() is None
    assert extractor.sample_rate == 8000
    assert [(o.name, o.dim, o.pooling) for o in extractor.outputs] == [
        ("scene", 6, ("mean", "std")), ("timestamp", 5, ("mean",)),
        ("timestamp_spread", 5, ("mean",))]
    assert extractor.model_files() == [hear_path / "weights.txt"]
    # The weights path and the module's source are in the hash.
    other = registry.create_from_spec("hear:tiny_hear")
    assert other.config_hash() != extractor.config_hash()
    before = other.config_hash()
    (hear_path / "tiny_hear.py").write_text(HEAR_MODULE + "\n# edited\n")
    assert registry.create_from_spec("hear:tiny_hear").config_hash() != before


@pytest.mark.parametrize(("spec", "reason"), [
    ("hear:no_such_module", "HEAR module 'no_such_module' cannot be imported (No module named "
                            "'no_such_module'); put it on PYTHONPATH or install it"),
    ("hear:not_hear", "HEAR module 'not_hear' ({path}/not_hear.py) lacks the HEAR API "
                      "function(s) get_scene_embeddings, get_timestamp_embeddings"),
    ("hear:tiny_hear:weights={path}/none.pt", "weights file {path}/none.pt does not exist"),
])
def test_hear_errors_are_one_line(hear_path: Path, spec: str, reason: str) -> None:
    extractor = registry.create_from_spec(spec.format(path=hear_path))
    assert extractor.unavailable_reason() == reason.format(path=hear_path)


def test_bad_hear_names(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="'1x' is not a Python module name"):
        registry.create_from_spec("hear:1x")
    with pytest.raises(KeyError, match=r"unknown extractor 'hear'.*hear:<module>"):
        registry.create_from_spec("hear")


def test_new_extractors_through_the_cli(tmp_path: Path, hear_path: Path) -> None:
    """`mfs extract` runs a HEAR module written here on real clips (the registered
    extractors run through it in test_cli_extract.py); `mfs extractors` lists the library
    extractors and the HEAR form; a missing module is one line."""
    music = tmp_path / "music"
    music.mkdir()
    for clip in CLIPS:
        shutil.copy(shared("gtzan-excerpts/genres") / clip, music)
    write_audio(music / "short.wav", seconds=0.5, rate=22050)  # under one HEAR window
    store = tmp_path / "store"
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(hear_path),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    assert run_mfs("scan", str(music), "--kind", "folder", "--name", "lib",
                   "--store", str(store)).returncode == 0
    hear = f"hear:tiny_hear:weights={hear_path}/weights.txt"
    specs = [hear]
    result = run_mfs("extract", "lib", "--store", str(store),
                     *[a for spec in specs for a in ("-e", spec)], env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    for spec in specs:
        assert f"{spec}: 3 extracted, 0 failed" in result.stdout, result.stdout

    con = Store(store).connect()
    hear_rows = con.execute('SELECT config, n_windows, scene_mean, scene_std, timestamp_mean, '
                            f'timestamp_spread_mean FROM "{view_name("hear-tiny_hear")}"'
                            ).fetchall()
    assert len(hear_rows) == 3
    for config, n_windows, *vectors in hear_rows:
        assert json.loads(config) == {"weights": f"{hear_path}/weights.txt",
                                      "window_seconds": 30.0}
        assert n_windows == 1
        assert [len(v) for v in vectors] == [6, 6, 5, 5]
        assert all(np.all(np.isfinite(v)) for v in vectors)

    listed = run_mfs("extractors", env=env)
    assert listed.returncode == 0, listed.stderr
    for name in ("opensmile-egemaps", "opensmile-compare", "essentia-music", "hear:<module>"):
        assert name in listed.stdout

    missing = run_mfs("extract", "lib", "-e", "hear:absent_module", "--store", str(store),
                      env=env)
    assert missing.returncode == 1
    assert missing.stderr == ("error: extractor hear-absent_module: HEAR module "
                              "'absent_module' cannot be imported (No module named "
                              "'absent_module'); put it on PYTHONPATH or install it\n")


def test_unknown_extractor_names_the_hear_form() -> None:
    code, _, err = invoke("extract", "lib", "--extractor", "nope", "--store", "/nonexistent")
    assert code == 1 and "hear:<module>" in err and "essentia-music" in err
