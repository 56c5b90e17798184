"""STFT-based frame features in torch, defined the way librosa defines them.

FMA's `features.py` computes its features with librosa; this module reproduces those
definitions (filterbanks, normalisations, tuning estimate, dB scaling) with batched torch
ops, so a track costs one FFT pass and a few matrix products. Filterbanks are built in
numpy (float64, like librosa) and cached per sample rate. The per-frame statistics read
straight off each frame's spectrum (rmse, centroid, bandwidth, rolloff, the contrast
bands' extremes, the tuning peaks) are made in one C pass per frame (`frame_stats.py`).
The arithmetic on a few thousand tuning peaks runs in numpy, where torch's per-op cost
dominates.

Spectrograms are (batch, frames, bins): each frame's bins are contiguous, which is how the
FFT writes them and what every per-frame reduction here wants. Frame features come back
as (batch, frames, dims).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TypeVar

import numpy as np
import torch

from mfs.extractors.fma518 import native
from mfs.extractors.mel import fft_frequencies

A440 = 440.0
TUNING_RESOLUTION = 0.01  # librosa.estimate_tuning's default histogram resolution
TUNING_EDGES = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / TUNING_RESOLUTION)) + 1)
TUNING_ZERO = int(np.flatnonzero(TUNING_EDGES == 0.0)[0])  # index of tuning 0.0
MEL_GROUP = 16  # mel filters per dense block: the filterbank is banded, not dense
LIFT = 2.0**32  # scale that keeps |X|² of near-silent frames out of float32 underflow


# --- padding and framing --------------------------------------------------------------
def pad_reflect(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last axis by `pad` each side like numpy's `reflect` (librosa 0.5's centring).

    The two mirrored ends are concatenated to the signal: torch's reflect pad costs five
    times as much on the CPU. numpy reflects repeatedly when `pad` reaches past the signal;
    that is indexing a mirror-periodic signal, which short tracks need.
    """
    n = x.shape[-1]
    if pad < n:
        return torch.cat([x[..., 1 : pad + 1].flip(-1), x, x[..., n - pad - 1 : n - 1].flip(-1)],
                         dim=-1)
    positions = torch.arange(-pad, n + pad, device=x.device)
    period = max(2 * (n - 1), 1)
    folded = positions.remainder(period)
    return x[..., torch.where(folded < n, folded, period - folded)]


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (librosa `center=True`)."""
    return 1 + n_samples // hop_length


def stft_frames(x: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """The STFT's frames (batch, frames, n_fft), centred by reflect padding: a view of one
    padded copy of the signal."""
    return pad_reflect(x, n_fft // 2).unfold(-1, n_fft, hop_length)


# --- librosa-style helpers -------------------------------------------------------------


def normalize(x: torch.Tensor, norm: float, dim: int = -1) -> torch.Tensor:
    """librosa.util.normalize: vectors whose norm is below float `tiny` are left as they are."""
    if norm == float("inf"):
        length = x.abs().amax(dim, keepdim=True)
    elif norm == 1.0:
        length = x.abs().sum(dim, keepdim=True)
    else:
        length = x.pow(2).sum(dim, keepdim=True).sqrt()
    tiny = torch.finfo(x.dtype).tiny
    return x / torch.where(length < tiny, torch.ones_like(length), length)


def power_to_db(power: torch.Tensor, peak: torch.Tensor | None = None, amin: float = 1e-10,
                top_db: float = 80.0) -> torch.Tensor:
    """librosa.power_to_db(ref=1): the `top_db` floor is relative to each track's maximum
    in dB, `peak` (batch,) when the track is seen a part at a time (`db_peak` of every
    part, maximised), else taken from `power`."""
    db = _db(power, amin)
    peak = db_peak(db, amin, in_db=True) if peak is None else peak
    return torch.maximum(db, peak.view(-1, *([1] * (db.dim() - 1))) - top_db)


def db_peak(power: torch.Tensor, amin: float = 1e-10, in_db: bool = False) -> torch.Tensor:
    """Each track's maximum of `power` (batch, ...) in dB: the reference of `power_to_db`."""
    return (power if in_db else _db(power, amin)).flatten(1).amax(1)


def _db(power: torch.Tensor, amin: float) -> torch.Tensor:
    return 10.0 * torch.log10(power.clamp_min(amin))


def hz_to_octs(freqs: np.ndarray, tuning: float = 0.0, bins_per_octave: int = 12) -> np.ndarray:
    """Octaves above A0 (27.5 Hz), shifted by `tuning` fractions of a bin."""
    a440 = A440 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(freqs / (a440 / 16))


# --- filterbanks (numpy, cached) ---------------------------------------------------------
def mel_blocks(weights: np.ndarray, group: int = MEL_GROUP
               ) -> list[tuple[int, int, np.ndarray]]:
    """Split a mel filterbank into dense (first bin, end bin, (bins, filters)) blocks.

    Each group of adjacent filters only touches a narrow band of bins, so a few small
    matrix products do the work of the dense one with ~1/10 of its multiply-adds.
    """
    blocks = []
    for first in range(0, len(weights), group):
        part = weights[first : first + group]
        used = np.flatnonzero(part.any(axis=0))
        start, stop = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        blocks.append((start, stop, np.ascontiguousarray(part[:, start:stop].T)))
    return blocks


@lru_cache(maxsize=16)
def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_out, n_in): librosa's mfcc is `dct(type=2, norm='ortho')`."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


@lru_cache(maxsize=256)
def chroma_filterbank(sample_rate: float, n_fft: int, tuning_index: int,
                      n_chroma: int = 12) -> np.ndarray:
    """Gaussian-bump chroma filters (n_chroma, bins) (librosa.filters.chroma defaults).

    `tuning_index` indexes `TUNING_EDGES`; integer keys keep the cache exact.
    """
    tuning = TUNING_EDGES[tuning_index]
    frequencies = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * hz_to_octs(frequencies, tuning, n_chroma)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    dist = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    dist = np.remainder(dist + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * dist / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    weights /= np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights *= np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2.0) ** 2))  # ctroct 5, width 2
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)  # start at C, not A
    return np.ascontiguousarray(weights[:, : 1 + n_fft // 2], dtype=np.float32)


@lru_cache(maxsize=16)
def contrast_bands(sample_rate: float, n_fft: int, n_bands: int = 6, fmin: float = 200.0,
                   quantile: float = 0.02) -> tuple[tuple[int, int, int], ...]:
    """(first bin, end bin, quantile count) per octave band of librosa.spectral_contrast."""
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    if np.any(octa[:-1] >= 0.5 * sample_rate):
        raise ValueError(f"spectral contrast: {n_bands} octave bands from {fmin} Hz reach "
                         f"past Nyquist at {sample_rate} Hz")
    freq = fft_frequencies(sample_rate, n_fft)
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:], strict=True)):
        idx = np.flatnonzero((freq >= f_low) & (freq <= f_high))
        start = idx[0] - 1 if k > 0 else idx[0]
        stop = len(freq) if k == n_bands else idx[-1] + 1
        count = int(max(np.rint(quantile * (stop - start)), 1))
        if k < n_bands:
            stop -= 1  # librosa drops the band's top bin, shared with the next band
        bands.append((int(start), int(stop), count))
    return tuple(bands)


# --- tuning ----------------------------------------------------------------------------
@lru_cache(maxsize=16)
def pitch_bins(sample_rate: float, n_fft: int, fmin: float = 150.0,
               fmax: float = 4000.0) -> tuple[int, int]:
    """The bins [lo, hi) where librosa.piptrack looks for peaks (fmin <= f < fmax)."""
    freqs = fft_frequencies(sample_rate, n_fft)
    in_range = np.flatnonzero((freqs >= fmin) & (freqs < min(fmax, sample_rate / 2)))
    return max(int(in_range[0]), 1), min(int(in_range[-1]) + 1, len(freqs) - 1)


@dataclass(frozen=True)
class Peaks:
    """piptrack's candidate peaks of |X| (`frame_stats.spectrum_stats`): bins above both
    neighbours (not below the upper one, as librosa's localmax) and above a share of
    their frame's maximum.

    A local maximum above the gate is one of librosa's gated spectrum. Squaring keeps the
    order (up to rounding ties), so the peaks of |X|² are the subset of these whose square
    passes the same gate: one search serves both of FMA's tuning estimates.

    numpy arrays in track order, track i's peaks at `starts[i]:starts[i + 1]`: each peak's
    bin, |X| at bin - 1, bin, bin + 1, and its frame's maximum |X|.
    """

    starts: np.ndarray
    bin: np.ndarray
    below: np.ndarray
    here: np.ndarray
    above: np.ndarray
    frame_top: np.ndarray


@dataclass(frozen=True)
class TuningVotes:
    """The peaks that may vote in one tuning estimate (`tuning_votes`), per track like
    `Peaks`: each one's interpolated pitch and magnitude. 8 bytes a peak (a `Peaks` entry
    takes 24), kept for a whole track until its median magnitude is known."""

    starts: np.ndarray
    pitch: np.ndarray
    mag: np.ndarray


Ranges = TypeVar("Ranges", Peaks, TuningVotes)


def merge_ranges(parts: list[Ranges]) -> Ranges:
    """One `Peaks` (or `TuningVotes`) from those of consecutive frame ranges of the same
    tracks: each track's entries from every range, track after track (the tuning vote
    ignores their order)."""
    if len(parts) == 1:
        return parts[0]
    names = [field.name for field in fields(parts[0]) if field.name != "starts"]
    values = {name: np.concatenate([getattr(part, name) for part in parts]) for name in names}
    tracks = len(parts[0].starts) - 1
    if tracks > 1:  # regroup by track (one track's entries are already together)
        offsets = np.cumsum([0] + [part.starts[-1] for part in parts[:-1]])
        take = np.concatenate([np.arange(part.starts[i], part.starts[i + 1]) + offset
                               for i in range(tracks)
                               for part, offset in zip(parts, offsets, strict=True)])
        values = {name: value[take] for name, value in values.items()}
    counts = np.sum([np.diff(part.starts) for part in parts], axis=0)
    return type(parts[0])(starts=np.concatenate([[0], np.cumsum(counts)]), **values)


def tuning_votes(peaks: Peaks, bins: tuple[int, int], sample_rate: float, n_fft: int,
                 squared: bool, threshold: float = 0.1) -> TuningVotes:
    """The candidates of librosa.estimate_tuning among `peaks` (all or a range of a
    track's frames; `vote` counts them once the whole track's are in, and the two give
    librosa.estimate_tuning per track as a `TUNING_EDGES` index).

    piptrack places the peaks in `bins` (of |X|, or of |X|² when `squared`) by parabolic
    interpolation. float32 like librosa's, which this follows operation by operation.
    """
    below, here, above = peaks.below, peaks.here, peaks.above
    keep = (peaks.bin >= bins[0]) & (peaks.bin < bins[1])
    if squared:
        below, here, above = below * below, here * here, above * above
        keep &= here > threshold * (peaks.frame_top * peaks.frame_top)
    starts = np.concatenate([[0], np.cumsum(keep)])[peaks.starts]
    below, here, above, bin_ = below[keep], here[keep], above[keep], peaks.bin[keep]
    a = above + below - 2 * here
    b = (above - below) / 2
    shift = np.divide(-b, a, out=np.zeros_like(a), where=np.abs(b) < np.abs(a))
    mags = here + 0.5 * b * shift
    pitch = ((bin_ + shift) * float(sample_rate) / n_fft).astype(np.float32)
    return TuningVotes(starts, pitch, mags)


def vote(votes: TuningVotes, bins_per_octave: int = 12) -> list[int]:
    """Each track's tuning (librosa.pitch_tuning): its candidates at or above the median
    magnitude vote in a 0.01-bin histogram of their deviation from equal temperament and
    the fullest bin wins. No candidates (silence): tuning 0."""
    return [_vote(votes.pitch[start:stop], votes.mag[start:stop], bins_per_octave)
            for start, stop in zip(votes.starts[:-1], votes.starts[1:], strict=True)]


def _vote(pitch: np.ndarray, mags: np.ndarray, bins_per_octave: int) -> int:
    """Histogram vote of one track's peaks, as an edge index.

    A value in [-0.5, 0.5) falls in np.histogram's bin i when edge i <= value < edge i + 1.
    The bin is computed from the value and then moved by one where the edges (float64, as
    np.histogram compares) say the rounding put it next door: a binary search per value
    (searchsorted) cost a third of the whole tuning estimate.
    """
    if mags.size == 0:
        return TUNING_ZERO
    pitch = pitch[(mags >= np.median(mags)) & (pitch > 0)]
    if pitch.size == 0:
        return TUNING_ZERO
    octaves = bins_per_octave * np.log2(pitch / (A440 / 16))
    residual = octaves - np.floor(octaves)  # = np.remainder(octaves, 1.0), exactly; 15x faster
    residual[residual >= 0.5] -= 1.0
    residual = residual.astype(np.float64)
    bins = np.clip(((residual + 0.5) / TUNING_RESOLUTION).astype(np.intp), 0,
                   len(TUNING_EDGES) - 2)
    bins -= residual < TUNING_EDGES[bins]
    bins += residual >= TUNING_EDGES[bins + 1]
    return int(np.bincount(bins, minlength=len(TUNING_EDGES) - 1).argmax())


# --- frame features --------------------------------------------------------------------
def zero_crossing_rate(x: torch.Tensor, frame_length: int, hop_length: int,
                       threshold: float = 1e-10) -> torch.Tensor:
    """librosa.zero_crossing_rate: centred, edge-padded frames; |x| <= 1e-10 counts as
    positive. In C (`native.py`): one pass over the signal, by blocks of
    gcd(frame_length, hop) samples; on the CPU whatever the device."""
    frames, block = n_frames(x.shape[1], hop_length), math.gcd(frame_length, hop_length)
    signal = native.host_array(x)
    scratch = np.empty(((frames - 1) * hop_length + frame_length) // block, dtype=np.int32)
    counts = np.empty((len(signal), frames), dtype=np.int32)
    for track, out in zip(signal, counts, strict=True):
        native.LIB.zero_crossings(native.address(track), len(track), frame_length,
                                  hop_length, block, frames, threshold,
                                  native.address(scratch), native.address(out))
    rate = torch.from_numpy(counts.astype(np.float32) / np.float32(frame_length))
    return rate[..., None].to(x.device)


def spectral_contrast(peak: torch.Tensor, valley: torch.Tensor,
                      tops: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Peak minus valley in dB, from the band extremes of `frame_stats.spectrum_stats`
    (the dB floors are relative to the track's maxima: `tops` = their `db_peak`s, or
    taken from the frames given when they are the whole track)."""
    peak_top, valley_top = (None, None) if tops is None else tops
    return power_to_db(peak, peak_top) - power_to_db(valley, valley_top)


def chroma_stft(power: torch.Tensor, filters: torch.Tensor, n_chroma: int = 12
                ) -> torch.Tensor:
    """Chroma of the power spectrum, each frame scaled to max 1; filters (batch, bins, k):
    the `n_chroma` filters, then any zero columns that make the product faster."""
    return normalize(torch.bmm(power, filters)[..., :n_chroma], float("inf"))


def mel_power(power: torch.Tensor, blocks: list[tuple[int, int, torch.Tensor]]) -> torch.Tensor:
    """Mel spectrogram (batch, frames, mels) from `mel_blocks` of the filterbank."""
    return torch.cat([torch.matmul(power[..., a:b], w) for a, b, w in blocks], dim=-1)


def mfcc(mel: torch.Tensor, dct: torch.Tensor, top: torch.Tensor | None = None
         ) -> torch.Tensor:
    """MFCCs: DCT-II (ortho) of the dB mel spectrogram (Slaney mel, top_db 80), from
    `mel_power` (the dB floor is relative to the track's maximum: `top`, its `db_peak`, or
    taken from `mel` when it is the whole track)."""
    return torch.matmul(power_to_db(mel, top), dct.T)
