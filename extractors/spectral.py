"""STFT-based frame features in torch, defined the way librosa defines them.

FMA's `features.py` computes its features with librosa; this module reproduces those
definitions (filterbanks, normalisations, tuning estimate, dB scaling) with batched torch
ops, so a track costs one FFT pass and a few matrix products. Filterbanks are built in
numpy (float64, like librosa) and cached per sample rate.

Spectrograms are (batch, frames, bins): each frame's bins are contiguous, which is how the
FFT writes them and what every per-frame reduction here wants. Frame features come back
as (batch, frames, dims).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

A440 = 440.0
TUNING_RESOLUTION = 0.01  # librosa.estimate_tuning's default histogram resolution
TUNING_EDGES = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / TUNING_RESOLUTION)) + 1)
TUNING_ZERO = int(np.flatnonzero(TUNING_EDGES == 0.0)[0])  # index of tuning 0.0
MEL_GROUP = 16  # mel filters per dense block: the filterbank is banded, not dense
MOMENT_CHUNK = 256  # frames per float64 chunk in `centroid_bandwidth`
_LIFT = 2.0**32  # STFT scale that keeps |X|² of near-silent frames out of float32 underflow


# --- padding and framing --------------------------------------------------------------
def pad_reflect(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last axis by `pad` each side like numpy's `reflect` (librosa 0.5's centring).

    numpy reflects repeatedly when `pad` reaches past the signal, where torch's reflect pad
    refuses; that is indexing a mirror-periodic signal, which short tracks need.
    """
    n = x.shape[-1]
    if pad < n:
        return torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    positions = torch.arange(-pad, n + pad, device=x.device)
    period = max(2 * (n - 1), 1)
    folded = positions.remainder(period)
    return x[..., torch.where(folded < n, folded, period - folded)]


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (librosa `center=True`)."""
    return 1 + n_samples // hop_length


def stft_spectra(x: torch.Tensor, window: torch.Tensor, hop_length: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """|STFT| and |STFT|² (batch, frames, bins): Hann-windowed frames centred by reflect
    padding.

    re² + im² is fast, but it underflows float32 for the near-silent frames of fades
    (|X| < 1e-19), where librosa's |X| is still exact. Scaling the window by 2^32 (exact
    in binary floating point) keeps every square in range for |x| < 4e6.
    """
    n_fft = window.shape[0]
    frames = pad_reflect(x, n_fft // 2).unfold(-1, n_fft, hop_length) * (window * _LIFT)
    parts = torch.view_as_real(torch.fft.rfft(frames))
    real, imag = parts[..., 0], parts[..., 1]
    power = (real * real).addcmul_(imag, imag)
    mag = power.sqrt().mul_(1.0 / _LIFT)
    return mag, power.mul_(1.0 / _LIFT**2)


# --- librosa-style helpers -------------------------------------------------------------
def fft_frequencies(sample_rate: float, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate)


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


def power_to_db(power: torch.Tensor, amin: float = 1e-10, top_db: float = 80.0) -> torch.Tensor:
    """librosa.power_to_db(ref=1): the `top_db` floor is relative to each track's maximum."""
    db = 10.0 * torch.log10(power.clamp_min(amin))
    peak = db.flatten(1).amax(1).view(-1, *([1] * (db.dim() - 1)))
    return torch.maximum(db, peak - top_db)


def hz_to_octs(freqs: np.ndarray, tuning: float = 0.0, bins_per_octave: int = 12) -> np.ndarray:
    """Octaves above A0 (27.5 Hz), shifted by `tuning` fractions of a bin."""
    a440 = A440 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(freqs / (a440 / 16))


# --- filterbanks (numpy, cached) ---------------------------------------------------------
_MEL_F_SP = 200.0 / 3  # Hz per mel below 1 kHz (Slaney)
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(freqs: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freqs = np.asarray(freqs, dtype=np.float64)
    log_part = _MEL_MIN_LOG_MEL + np.log(np.maximum(freqs, _MEL_MIN_LOG_HZ)
                                         / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return np.where(freqs >= _MEL_MIN_LOG_HZ, log_part, freqs / _MEL_F_SP)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    log_part = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels - _MEL_MIN_LOG_MEL))
    return np.where(mels >= _MEL_MIN_LOG_MEL, log_part, _MEL_F_SP * mels)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """Slaney-normalised triangular mel filters (n_mels, bins), 0 Hz to Nyquist."""
    fft_freqs = fft_frequencies(sample_rate, n_fft)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


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


def median(x: torch.Tensor) -> torch.Tensor:
    """numpy's median along the last axis: the mean of the two middle values when even.

    By selection (kthvalue), as torch's CPU sort is slow.
    """
    n = x.shape[-1]
    lower = x.kthvalue((n + 1) // 2, dim=-1).values
    if n % 2:
        return lower
    at_or_below = (x <= lower[..., None]).sum(-1)
    above = torch.where(x > lower[..., None], x, torch.inf).amin(-1)
    return (lower + torch.where(at_or_below > n // 2, lower, above)) / 2


# --- tuning ----------------------------------------------------------------------------
def pitch_bins(sample_rate: float, n_fft: int, fmin: float = 150.0,
               fmax: float = 4000.0) -> tuple[int, int]:
    """The bins [lo, hi) where librosa.piptrack looks for peaks (fmin <= f < fmax)."""
    freqs = fft_frequencies(sample_rate, n_fft)
    in_range = np.flatnonzero((freqs >= fmin) & (freqs < min(fmax, sample_rate / 2)))
    return max(int(in_range[0]), 1), min(int(in_range[-1]) + 1, len(freqs) - 1)


@dataclass(frozen=True)
class Peaks:
    """piptrack's candidate peaks of |X|: local maxima above a share of their frame's top.

    For each: its track, bin, |X| at bin - 1, bin, bin + 1, and its frame's maximum |X|.
    """

    track: torch.Tensor
    bin: torch.Tensor
    below: torch.Tensor
    here: torch.Tensor
    above: torch.Tensor
    frame_top: torch.Tensor


def find_peaks(mag: torch.Tensor, lo: int, hi: int, threshold: float = 0.1) -> Peaks:
    """Bins in [lo, hi) above both neighbours (not below the upper one, as librosa's
    localmax) and above `threshold` × their frame's maximum.

    A local maximum above the gate is one of librosa's gated spectrum. Squaring keeps the
    order (up to rounding ties), so the peaks of |X|² are the subset of these whose square
    passes the same gate: one search serves both of FMA's tuning estimates.
    """
    top = mag.amax(-1, keepdim=True)
    centre = mag[..., lo:hi]
    found = ((centre > threshold * top) & (centre > mag[..., lo - 1 : hi - 1])
             & (centre >= mag[..., lo + 1 : hi + 1]))
    track, frame, bin_ = found.nonzero(as_tuple=True)
    bin_ = bin_ + lo
    at = (track * mag.shape[1] + frame) * mag.shape[2] + bin_
    flat = mag.reshape(-1)
    return Peaks(track, bin_, flat[at - 1], flat[at], flat[at + 1],
                 top.reshape(-1)[track * mag.shape[1] + frame])


def estimate_tuning(peaks: Peaks, n_tracks: int, bins: tuple[int, int], sample_rate: float,
                    n_fft: int, squared: bool, bins_per_octave: int = 12,
                    threshold: float = 0.1) -> list[int]:
    """librosa.estimate_tuning per track, as `TUNING_EDGES` indices, from `find_peaks`.

    piptrack places the peaks in `bins` (of |X|, or of |X|² when `squared`) by parabolic
    interpolation; those at or above the median magnitude vote in a 0.01-bin histogram of
    their deviation from equal temperament and the fullest bin wins. No peaks (silence)
    means tuning 0.
    """
    keep = (peaks.bin >= bins[0]) & (peaks.bin < bins[1])
    # Few values, and float64 below: done on the CPU whatever the device (MPS has no float64).
    below, here, above = (v[keep].cpu() for v in (peaks.below, peaks.here, peaks.above))
    track, bin_, frame_top = (v[keep].cpu() for v in (peaks.track, peaks.bin, peaks.frame_top))
    if squared:
        below, here, above = below * below, here * here, above * above
        gate = here > threshold * frame_top.pow(2)
        below, here, above, track, bin_ = (v[gate] for v in (below, here, above, track, bin_))
    a = above + below - 2 * here
    b = (above - below) / 2
    shift = torch.where(b.abs() < a.abs(), -b / a, torch.zeros_like(a))
    mags = here + 0.5 * b * shift
    pitch = ((bin_.double() + shift.double()) * (float(sample_rate) / n_fft)).float()
    if n_tracks == 1:
        return [_vote(pitch, mags, bins_per_octave)]
    return [_vote(pitch[track == i], mags[track == i], bins_per_octave)
            for i in range(n_tracks)]


def _vote(pitch: torch.Tensor, mags: torch.Tensor, bins_per_octave: int) -> int:
    """Histogram vote of one track's peaks (librosa.pitch_tuning), as an edge index."""
    if mags.numel() == 0:
        return TUNING_ZERO
    pitch = pitch[(mags >= median(mags)) & (pitch > 0)]
    if pitch.numel() == 0:
        return TUNING_ZERO
    residual = torch.remainder(bins_per_octave * torch.log2(pitch / (A440 / 16)), 1.0)
    residual = torch.where(residual >= 0.5, residual - 1.0, residual)
    return int(torch.bincount(_histogram_bins(residual), minlength=len(TUNING_EDGES) - 1)
               .argmax())


def _histogram_bins(values: torch.Tensor) -> torch.Tensor:
    """np.histogram's bin of each value in [-0.5, 0.5) over `TUNING_EDGES`.

    Arithmetic first guess, then numpy's correction against the exact edges (which
    `bucketize` would do by binary search, several times slower here).
    """
    edges = torch.as_tensor(TUNING_EDGES, device=values.device)
    wide = values.double()
    last = len(TUNING_EDGES) - 2
    guess = ((wide - TUNING_EDGES[0]) * (last + 1)).long().clamp(0, last)
    guess = guess - (wide < edges[guess]).long()
    return guess + ((wide >= edges[guess + 1]) & (guess < last)).long()


# --- frame features --------------------------------------------------------------------
def zero_crossing_rate(x: torch.Tensor, frame_length: int, hop_length: int) -> torch.Tensor:
    """librosa.zero_crossing_rate: edge-padded frames, |x| <= 1e-10 counts as positive.

    Edge padding repeats the end samples, which adds no crossings, so a running count of
    the signal's own sign changes gives each frame's count by one subtraction.
    """
    negative = x < -1e-10
    running = torch.nn.functional.pad(
        (negative[:, 1:] != negative[:, :-1]).cumsum(1, dtype=torch.int32), (1, 0))
    centres = torch.arange(n_frames(x.shape[1], hop_length), device=x.device) * hop_length
    half = frame_length // 2
    last = (centres + half - 1).clamp(max=x.shape[1] - 1)
    first = (centres - half).clamp(min=0)
    return ((running[:, last] - running[:, first]).to(x.dtype) / frame_length)[..., None]


def rmse(power: torch.Tensor) -> torch.Tensor:
    """librosa 0.5's rmse(S=|X|): sqrt of the mean squared magnitude over bins.

    librosa >= 0.7 `rms(S=)` rescales by Parseval (about 45× smaller at n_fft 2048);
    FMA's features.csv holds the 0.5 values, so this is what we keep.
    """
    return power.mean(-1, keepdim=True).sqrt()


def centroid_bandwidth(mag: torch.Tensor, moments: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral centroid and (p=2) bandwidth of each frame's L1-normalised magnitude.

    `moments` is (bins, 3) = [1, f, f²] in float64: one product gives Σ S, Σ S f, Σ S f²,
    and only float64 keeps Σ S f² / Σ S - centroid² right for tonal frames (float32 is
    off by tens of % on a pure tone). Frames go through in chunks to keep the float64
    copy small.
    """
    sums = torch.cat([torch.matmul(part.to(moments.dtype), moments)
                      for part in mag.split(MOMENT_CHUNK, dim=1)], dim=1)
    s0, s1, s2 = sums.unbind(-1)
    scale = torch.where(s0 < torch.finfo(mag.dtype).tiny, torch.ones_like(s0), s0)
    centroid = s1 / scale
    spread = (s2 - 2 * centroid * s1 + centroid.pow(2) * s0) / scale
    return (centroid[..., None].to(mag.dtype),
            spread.clamp_min(0).sqrt()[..., None].to(mag.dtype))


def rolloff(mag: torch.Tensor, freqs: torch.Tensor, roll_percent: float = 0.85) -> torch.Tensor:
    """Lowest bin frequency at which the running magnitude sum reaches `roll_percent`."""
    total = mag.cumsum(-1)
    first = torch.searchsorted(total, roll_percent * total[..., -1:])
    return freqs[first.clamp_max(mag.shape[-1] - 1)]


def _extreme_means(band: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of the `count` largest and of the `count` smallest values along the last axis.

    On the CPU this is numpy's introselect, in place on one copy (the largest values go
    to the end, then the smallest are selected among the rest): torch's CPU topk is
    several times slower and would be the costliest step of the whole extractor.
    """
    if count == 1:
        return band.amax(-1), band.amin(-1)
    if band.device.type != "cpu":
        return (band.topk(count, dim=-1).values.mean(-1),
                band.topk(count, dim=-1, largest=False).values.mean(-1))
    values = np.ascontiguousarray(band.numpy())
    rest = values.shape[-1] - count
    values.partition(rest, axis=-1)
    top = values[..., rest:].mean(-1)
    values[..., :rest].partition(count - 1, axis=-1)
    return torch.from_numpy(top), torch.from_numpy(values[..., :count].mean(-1))


def spectral_contrast(mag: torch.Tensor, bands: tuple[tuple[int, int, int], ...]
                      ) -> torch.Tensor:
    """Peak minus valley (dB) per octave band: means of the top and bottom 2% of bins."""
    peaks, valleys = zip(*(_extreme_means(mag[..., a:b], n) for a, b, n in bands), strict=True)
    return power_to_db(torch.stack(peaks, -1)) - power_to_db(torch.stack(valleys, -1))


def chroma_stft(power: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Chroma of the power spectrum, each frame scaled to max 1; filters (batch, bins, 12)."""
    return normalize(torch.bmm(power, filters), float("inf"))


def mel_power(power: torch.Tensor, blocks: list[tuple[int, int, torch.Tensor]]) -> torch.Tensor:
    """Mel spectrogram (batch, frames, mels) from `mel_blocks` of the filterbank."""
    return torch.cat([torch.matmul(power[..., a:b], w) for a, b, w in blocks], dim=-1)


def mfcc(power: torch.Tensor, blocks: list[tuple[int, int, torch.Tensor]],
         dct: torch.Tensor) -> torch.Tensor:
    """MFCCs: DCT-II (ortho) of the dB mel spectrogram (Slaney mel, top_db 80)."""
    return torch.matmul(power_to_db(mel_power(power, blocks)), dct.T)
