"""fma518 against FMA's features.py run with librosa (`fma518_reference.py`).

The cross-check runs on real clips from ../shared/data: 30 GTZAN excerpts (3 per genre,
22.05 kHz mono) and the 5 cc-music recordings (44.1 kHz stereo, averaged to mono, cut to
their first 20 s so the librosa side stays quick). Leading and trailing digital silence is
trimmed first: see `fma518_reference` for why soxr noise makes librosa's chroma undefined
there. Edge cases (1 s, silence, 8 kHz, 96 kHz, batches) run on slices of the same clips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from mfs.extractors.fma518 import features as fma518_features
from mfs.extractors.fma518 import spectral
from mfs.extractors.fma518.extractor import (
    FAMILIES,
    FEATURE_NAMES,
    STATISTICS,
    Fma518,
    Fma518Config,
)

librosa = pytest.importorskip("librosa", reason="librosa (a test dependency) is not installed")
import fma518_reference as reference  # noqa: E402  (needs librosa, checked just above)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GTZAN = DATA / "gtzan-excerpts" / "genres"
CC_MUSIC = DATA / "cc-music"
GTZAN_NUMBERS = (0, 3, 6)  # three excerpts per genre, the same every run
CC_SECONDS = 20
MIN_CORRELATION = 0.99
MAX_MEDIAN_RELATIVE_ERROR = 1e-3
CQT_FAMILIES = ("chroma_cqt", "chroma_cens", "tonnetz")

needs_data = pytest.mark.skipif(
    not (GTZAN.is_dir() and CC_MUSIC.is_dir()),
    reason=f"real clips absent: expected {GTZAN} and {CC_MUSIC} (see shared/data/README.md)")


def load(path: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode with soundfile, average the channels, trim digital silence, cut to `seconds`."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = reference.trim_digital_silence(data.mean(axis=1, dtype=np.float32))
    return (mono if seconds is None else mono[: int(seconds * rate)]), rate


def clip_paths() -> list[Path]:
    gtzan = [GTZAN / genre / f"{genre}.{n:05d}.flac"
             for genre in sorted(p.name for p in GTZAN.iterdir()) for n in GTZAN_NUMBERS]
    return gtzan + sorted(CC_MUSIC.glob("*.ogg"))


@pytest.fixture(scope="module")
def extractor() -> Iterator[Fma518]:
    """The extractor on one CPU thread: its ops are small, and on a busy machine torch's
    intra-op threads wait on each other far longer than they save (see bench/RESULTS.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = Fma518()
    model.load(torch.device("cpu"))
    yield model
    torch.set_num_threads(threads)


def ours(extractor: Fma518, x: np.ndarray, rate: int) -> np.ndarray:
    with torch.inference_mode():
        return extractor.embed(torch.from_numpy(x)[None], rate)["features"][0].numpy()


def relative_error(got: np.ndarray, want: np.ndarray, floor: np.ndarray | float) -> np.ndarray:
    """|got - want| relative to |want|, with a floor so values near zero (skews, means of
    centred features) are judged against the feature's typical size instead."""
    return np.abs(got - want) / np.maximum(np.abs(want), floor)


@pytest.fixture(scope="module")
def comparison(extractor: Fma518) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(clip names, ours (clips, 518), librosa's (clips, 518)) on the real clips."""
    names, got, want = [], [], []
    for path in clip_paths():
        x, rate = load(path, CC_SECONDS if path.suffix == ".ogg" else None)
        names.append(path.name)
        got.append(ours(extractor, x, rate))
        want.append(reference.compute_features(x, rate).to_numpy())
    return names, np.array(got), np.array(want)


def test_feature_names_follow_features_csv() -> None:
    assert tuple("/".join(column) for column in reference.columns()) == FEATURE_NAMES
    assert len(FEATURE_NAMES) == sum(size for _, size in FAMILIES) * len(STATISTICS) == 518


def test_outputs_and_config() -> None:
    model = Fma518()
    (spec,) = model.outputs
    assert (spec.name, spec.dim, spec.pooling, spec.feature_names) == (
        "features", 518, (), FEATURE_NAMES)
    assert model.sample_rate is None and model.windowing.seconds is None
    assert Fma518(Fma518Config(hop_length=256)).config_hash() != model.config_hash()
    with pytest.raises(ValueError, match="multiple of 64"):
        Fma518Config(hop_length=500)


@pytest.mark.parametrize("hop_length", [512, 192, 320])
def test_zero_crossing_rate_matches_librosa(hop_length: int) -> None:
    """The per-block counts give librosa's rate also where the hop does not divide the
    frame (hops other than features.py's 512), exact zeros counting as positive."""
    rng = np.random.default_rng(hop_length)
    x = rng.standard_normal(5000).astype(np.float32)
    x[rng.random(len(x)) < 0.2] = 0.0
    want = librosa.feature.zero_crossing_rate(x, frame_length=2048, hop_length=hop_length)[0]
    got = spectral.zero_crossing_rate(torch.from_numpy(x)[None], 2048, hop_length)[0, :, 0]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-7)


@needs_data
def test_every_feature_tracks_librosa(comparison) -> None:
    """Pearson r >= 0.99 across clips for each of the 518 (equality where librosa's value
    does not vary, e.g. chroma maxima, which are 1 by normalisation)."""
    _, got, want = comparison
    assert np.isfinite(got).all()
    failures = []
    for j, name in enumerate(FEATURE_NAMES):
        if np.ptp(want[:, j]) <= 1e-6 * max(1.0, np.abs(want[:, j]).max()):
            if not np.allclose(got[:, j], want[:, j], rtol=1e-5, atol=1e-6):
                failures.append(f"{name}: constant {want[0, j]} vs {got[:, j]}")
            continue
        r = np.corrcoef(got[:, j], want[:, j])[0, 1]
        if not r >= MIN_CORRELATION:
            failures.append(f"{name}: r={r:.4f}")
    assert not failures, failures


@needs_data
def test_every_feature_is_close_to_librosa(comparison) -> None:
    """Per feature, the median relative error across clips is below 0.1%.

    Near-zero values are judged against a tenth of the feature's median size. Single clips
    can differ more where a frame sits on a CENS quantisation step or where the top
    contrast band holds only float32 FFT round-off (low-passed 44.1 kHz audio).
    """
    names, got, want = comparison
    floor = np.maximum(0.1 * np.median(np.abs(want), axis=0), 1e-6)
    error = relative_error(got, want, floor)
    median = np.median(error, axis=0)
    worst = np.argsort(median)[::-1][:5]
    assert median.max() <= MAX_MEDIAN_RELATIVE_ERROR, [
        (FEATURE_NAMES[j], float(median[j])) for j in worst]
    assert np.mean(error <= 1e-2) >= 0.99, "more than 1% of all values are off by >1%"


def close_to_reference(got: np.ndarray, want: np.ndarray) -> None:
    """One clip: nearly every feature within 1%, judged with an absolute floor of 0.01."""
    error = relative_error(got, want, 1e-2)
    assert np.median(error) <= 1e-4
    assert np.mean(error <= 1e-2) >= 0.98, [
        (FEATURE_NAMES[j], float(got[j]), float(want[j])) for j in np.flatnonzero(error > 1e-2)]


@needs_data
def test_one_second_track(extractor: Fma518) -> None:
    x, rate = load(GTZAN / "jazz" / "jazz.00003.flac", 1.0)
    close_to_reference(ours(extractor, x, rate), reference.compute_features(x, rate).to_numpy())


@needs_data
def test_96khz_input(extractor: Fma518) -> None:
    """At 96 kHz the CQT first halves the rate twice (librosa: once by 4 with soxr).

    Seeded noise at -60 dB fills the band above the upsampled clip's 11 kHz, which would
    otherwise hold only FFT round-off (and spectral contrast would compare round-off).
    """
    x, rate = load(GTZAN / "classical" / "classical.00003.flac", 6.0)
    x = soxr.resample(x, rate, 96000, quality="HQ")
    x = (x + 1e-3 * np.random.default_rng(96).standard_normal(len(x))).astype(np.float32)
    close_to_reference(ours(extractor, x, 96000),
                       reference.compute_features(x, 96000).to_numpy())


@needs_data
def test_8khz_input_has_no_cqt_features(extractor: Fma518) -> None:
    """librosa refuses a 7-octave CQT from C1 at 8 kHz (its top filter passes Nyquist), so
    FMA has no value there: those families are NaN, the others still match librosa."""
    x, rate = load(GTZAN / "country" / "country.00003.flac", 6.0)
    x = soxr.resample(x, rate, 8000, quality="HQ").astype(np.float32)
    with pytest.raises(librosa.ParameterError, match="Nyquist"):
        reference.frame_features(x, 8000)
    got = ours(extractor, x, 8000)
    in_cqt = np.array([name.split("/")[0] in CQT_FAMILIES for name in FEATURE_NAMES])
    assert np.isnan(got[in_cqt]).all() and np.isfinite(got[~in_cqt]).all()
    want = reference.summarise(reference.stft_frame_features(x, 8000))
    close_to_reference(got[~in_cqt], want.to_numpy()[~in_cqt])


def test_silence_is_finite(extractor: Fma518) -> None:
    """Digital silence: every frame feature is a constant, so spread is 0, skew 0 and
    kurtosis -3 (scipy 0.19, which made features.csv); MFCC 01 sits at -100 dB."""
    got = dict(zip(FEATURE_NAMES, ours(extractor, np.zeros(5 * 22050, np.float32), 22050),
                   strict=True))
    assert all(np.isfinite(v) for v in got.values())
    for name, value in got.items():
        statistic = name.split("/")[1]
        expected = {"skew": 0.0, "kurtosis": -3.0, "std": 0.0}.get(statistic)
        if name.startswith("mfcc/") and name.endswith("/01") and expected is None:
            expected = -100.0 * np.sqrt(128)  # DCT-II (ortho) of 128 mel bands at -100 dB
        assert value == pytest.approx(expected if expected is not None else 0.0,
                                      rel=1e-5, abs=1e-3), name


@needs_data
def test_batch_equals_one_by_one(extractor: Fma518) -> None:
    """Equal-length tracks in one batch (here with different tunings) give the same rows."""
    tracks = [load(GTZAN / genre / f"{genre}.00006.flac", 5.0)[0]
              for genre in ("blues", "pop", "metal")]
    with torch.inference_mode():
        batch = extractor.embed(torch.from_numpy(np.stack(tracks)), 22050)["features"].numpy()
    single = np.stack([ours(extractor, x, 22050) for x in tracks])
    np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-5)


@needs_data
def test_frame_chunks_do_not_change_features(extractor: Fma518,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The spectrogram is made and read in chunks of frames (`FRAME_CHUNK`), the tuning
    vote gathering each track's peaks from every chunk: chunks of 100 frames (uneven, the
    last one short) give the same bits as one chunk per track, also for a batch."""
    tracks = np.stack([load(GTZAN / genre / f"{genre}.00003.flac", 12.0)[0]
                       for genre in ("disco", "reggae")])
    with torch.inference_mode():
        whole = extractor.embed(torch.from_numpy(tracks), 22050)["features"].numpy()
        monkeypatch.setattr(fma518_features, "FRAME_CHUNK", 100)
        chunked = extractor.embed(torch.from_numpy(tracks), 22050)["features"].numpy()
    assert len(spectral.stft_frames(torch.from_numpy(tracks), 2048, 512)[0]) > 5 * 100
    np.testing.assert_array_equal(chunked, whole)


def streamed(extractor: Fma518, x: np.ndarray, rate: int, pieces: int) -> np.ndarray:
    """`embed_track` on x handed over in `pieces` uneven blocks."""
    cuts = np.sort(np.random.default_rng(pieces).choice(np.arange(1, len(x)), pieces - 1,
                                                        replace=False))
    with torch.inference_mode():
        features = extractor.embed_track(lambda: iter(np.split(x, cuts)), rate)["features"]
    return features[0].numpy()


@needs_data
@pytest.mark.parametrize(("path", "seconds", "rate"), [
    (DATA / "gtzan-full" / "genres" / "jazz" / "jazz.00000.au", None, None),  # 22.05 kHz
    (CC_MUSIC / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg", 30.0, None),  # 44.1 kHz: one halving first
    (GTZAN / "classical" / "classical.00003.flac", 8.0, 96000),  # two halvings first
    (GTZAN / "country" / "country.00003.flac", 12.0, 8000),  # no CQT: NaN families
])
def test_streamed_track_equals_whole_track(extractor: Fma518, monkeypatch: pytest.MonkeyPatch,
                                           path: Path, seconds: float | None,
                                           rate: int | None) -> None:
    """A long track is read in two passes of hop-aligned segments with the CQT's context
    (`Fma518.stream_frame_features`); forced here onto these clips (5 segments, the
    track's end mid-segment, uneven blocks), it gives the whole-track row. It
    gives the same bits on this machine; the tolerance allows a BLAS that sums a shorter
    product in another order."""
    x, native_rate = load(path, seconds)
    if rate is not None:
        x = soxr.resample(x, native_rate, rate, quality="HQ").astype(np.float32)
    rate = rate or native_rate
    whole = ours(extractor, x, rate)
    monkeypatch.setattr(fma518_features, "WHOLE_FRAMES", 0)
    monkeypatch.setattr(fma518_features, "SEGMENT_FRAMES", spectral.n_frames(len(x), 512) // 5 + 1)
    np.testing.assert_allclose(streamed(extractor, x, rate, 23), whole, rtol=1e-5, atol=1e-6)
    assert np.isnan(whole).any() == (rate == 8000)


def test_short_track_is_read_whole(extractor: Fma518, monkeypatch: pytest.MonkeyPatch) -> None:
    """A track of at most `WHOLE_FRAMES` frames takes one pass, the one `embed` makes."""
    x = (0.1 * np.random.default_rng(5).standard_normal(3 * 22050)).astype(np.float32)
    passes = []

    def blocks() -> Iterator[np.ndarray]:
        passes.append(1)
        return iter(np.array_split(x, 4))

    with torch.inference_mode():
        got = extractor.embed_track(blocks, 22050)["features"][0].numpy()
    assert len(passes) == 1
    np.testing.assert_array_equal(got, ours(extractor, x, 22050))
