"""Whole-track library extractors on long tracks (`segment_s`, `mfs.extractors.segments`):
a track up to `segment_s` is analysed whole, as before; a longer one gives the documented
duration-weighted mean of its equal segments' vectors, each segment analysed as a track."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, run_mfs, shared

from mfs.extractors import registry
from mfs.extractors.pipeline import decode_ahead
from mfs.extractors.segments import combine, segment_ends, split_blocks
from mfs.store import Store
from mfs.store.views import view_name


def blues() -> Path:
    """A real 15 s clip (GTZAN blues.00000)."""
    return shared("gtzan-excerpts/genres") / "blues/blues.00000.flac"


def test_segments_are_equal_and_cover_the_track() -> None:
    assert segment_ends(30.0, 30.0) == [30.0]  # exactly segment_s: whole
    assert segment_ends(30.1, 10.0) == pytest.approx([7.525, 15.05, 22.575, 30.1])
    stream = [np.arange(a, b, dtype=np.float32) for a, b in ((0, 7), (7, 8), (8, 30))]
    pieces = [np.concatenate(list(p)) for p in split_blocks(iter(stream), [10, 20, 30])]
    assert [p.tolist() for p in pieces] == [list(range(0, 10)), list(range(10, 20)),
                                            list(range(20, 30))]


def test_combine_is_the_duration_weighted_mean_of_numbers() -> None:
    vectors = np.array([[1.0, np.nan, 0.0], [4.0, 2.0, 1.0]])
    np.testing.assert_allclose(combine(vectors, np.array([1.0, 2.0])), [3.0, 2.0, 2 / 3])
    np.testing.assert_array_equal(combine(vectors[:1], np.array([5.0])), vectors[0])


def test_opensmile_long_track_combines_its_segments() -> None:
    """segment_s=6 on a 15 s clip: the documented combination of opensmile's own
    functionals of each equal segment, named and sized as the whole-track vector."""
    import opensmile

    extractor = registry.create_from_spec("opensmile-egemaps:segment_s=6")
    blocks = decode_ahead(blues(), 16000)
    got = extractor.embed_track(blocks, 16000)["functionals"].numpy()[0]
    signal = np.concatenate(list(blocks()))
    ends = [round(end) for end in segment_ends(len(signal), 6 * 16000)]
    assert len(ends) == 3  # 15.1 s: three segments of 5.04 s
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    rows = [smile.process_signal(signal[a:b], 16000).to_numpy()[0]
            for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    want = combine(np.stack(rows), np.diff([0, *ends]))
    assert got.shape == (88,) and np.all(np.isfinite(got))
    assert list(smile.feature_names) == list(extractor.outputs[0].feature_names)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    whole = registry.create("opensmile-egemaps").embed_track(blocks, 16000)["functionals"]
    assert not np.allclose(got, whole.numpy()[0])  # a different feature, not the whole's


def test_opensmile_track_up_to_segment_s_is_whole() -> None:
    """A track exactly `segment_s` long is analysed whole: today's output, bit for bit."""
    blocks = decode_ahead(blues(), 16000)
    seconds = sum(map(len, blocks())) / 16000
    default = registry.create("opensmile-egemaps").embed_track(blocks, 16000)["functionals"]
    exact = registry.create_from_spec(f"opensmile-egemaps:segment_s={seconds}")
    np.testing.assert_array_equal(exact.embed_track(blocks, 16000)["functionals"], default)


@pytest.mark.parametrize("name", ["opensmile-egemaps", "opensmile-compare", "essentia-music"])
def test_segment_s_hashes_apart_except_at_its_default(name: str) -> None:
    default = registry.create(name).config_hash()
    assert registry.create_from_spec(f"{name}:segment_s=600").config_hash() == default
    assert registry.create_from_spec(f"{name}:segment_s=120").config_hash() != default


def test_bad_segment_s_is_one_line() -> None:
    code, _, err = invoke("extract", "lib", "-e", "opensmile-compare:segment_s=0",
                          "--store", "/nonexistent")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: extractor spec 'opensmile-compare:segment_s=0': segment_s=0 must be a "
        "positive number of seconds"]


def essentia_vector(path: Path, **slice_: float) -> np.ndarray:
    """MusicExtractor's own pool of `path` (or of a slice of it), flattened."""
    import essentia.standard

    from mfs.extractors.essentia.extractor import SLOTS, flatten

    pool, _ = essentia.standard.MusicExtractor(**slice_)(str(path))
    return flatten({name: pool[name] for name in pool.descriptorNames() if name in SLOTS})


def test_essentia_segments_and_whole() -> None:
    """A clip up to `segment_s` is MusicExtractor's vector of the whole file, as before;
    segment_s=6 on a 15 s clip is the documented combination of its three slices."""
    extractor = registry.create("essentia-music")
    if extractor.unavailable_reason():
        pytest.skip(extractor.unavailable_reason())
    extractor.load("cpu")
    whole, seconds = extractor.embed_file(blues())
    np.testing.assert_array_equal(whole["features"][0], essentia_vector(blues()))

    segmented = registry.create_from_spec("essentia-music:segment_s=6")
    segmented.load("cpu")
    got, same_seconds = segmented.embed_file(blues())
    assert same_seconds == seconds
    ends = segment_ends(seconds, 6.0)
    assert len(ends) == 3
    starts = [0.0, *ends[:-1]]
    slices = [essentia_vector(blues(), startTime=a, endTime=b)
              for a, b in zip(starts, [*ends[:-1], 1e6], strict=True)]
    want = combine(np.stack(slices), np.diff([*starts, seconds]))
    vector = got["features"][0]
    assert vector.shape == whole["features"][0].shape and np.all(np.isfinite(vector))
    np.testing.assert_allclose(vector, want, rtol=1e-5, atol=1e-6)  # float32 sums
    names = extractor.outputs[0].feature_names
    keys = [i for i, name in enumerate(names) if name.startswith("tonal.key_edma.key=")]
    assert vector[keys].sum() == pytest.approx(1.0)  # fractions of the track's duration


def test_segments_through_the_cli(tmp_path: Path) -> None:
    """`mfs extract` with `opensmile-egemaps:segment_s=6` stores the combined vector (its
    config in the row), beside the default config's whole-track row of the same clip."""
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(blues(), music)
    store = tmp_path / "store"
    env = {"PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    assert run_mfs("scan", str(music), "--kind", "folder", "--name", "lib",
                   "--store", str(store)).returncode == 0
    specs = ["opensmile-egemaps:segment_s=6", "opensmile-egemaps"]
    result = run_mfs("extract", "lib", "--store", str(store), "-e", specs[0], "-e", specs[1],
                     env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = Store(store).connect().execute(
        f'SELECT config, functionals FROM "{view_name("opensmile-egemaps")}"').fetchall()
    stored = {json.dumps(json.loads(config), sort_keys=True): np.asarray(vector)
              for config, vector in rows}
    blocks = decode_ahead(blues(), 16000)
    for spec in specs:
        extractor = registry.create_from_spec(spec)
        want = extractor.embed_track(blocks, 16000)["functionals"].numpy()[0]
        got = stored[json.dumps(extractor.config.to_dict(), sort_keys=True)]
        np.testing.assert_allclose(got, want, rtol=1e-6)
