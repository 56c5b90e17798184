"""The shared extraction pipeline: decode → mono → resample → windows → batches → pool.

Written once for every extractor (see `base.py`). Decoding runs ahead of the model in
worker threads (libsndfile, FFmpeg and soxr release the GIL), windows of several tracks
share a batch so short clips keep the model busy, and each track's per-window outputs are
pooled into fixed-size vectors that become one feature row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import soxr
import torch

from mfs.extractors.audio import AudioError, decode
from mfs.extractors.base import Extractor, OutputSpec
from mfs.extractors.windowing import cut_windows
from mfs.store.provenance import library_versions
from mfs.store.schema import FEATURE_KEY_AND_PROVENANCE, embedding_type

FEATURE_NAMES_KEY = b"mfs.feature_names"


@dataclass
class TrackAudio:
    """One decoded track, cut into windows at the extractor's sample rate."""

    track_id: str
    windows: np.ndarray  # (n_windows, window_samples) float32
    sample_rate: int
    seconds: float


@dataclass(frozen=True)
class TrackFailure:
    track_id: str
    error_class: str
    reason: str


def load_mono(path: Path, target_rate: int | None) -> tuple[np.ndarray, int]:
    """Decode, average the channels, and resample (soxr, high quality) when asked."""
    data, rate = decode(path)
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if target_rate is not None and target_rate != rate:
        mono = soxr.resample(mono, rate, target_rate, quality="HQ").astype(np.float32)
        rate = target_rate
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{path}: decoded samples contain NaN or infinity")
    return mono, rate


def prepare(extractor: Extractor, track_id: str, path: Path) -> TrackAudio | TrackFailure:
    """Decode and window one track; every error becomes a `TrackFailure`, never a raise."""
    try:
        mono, rate = load_mono(path, extractor.sample_rate)
        windows = cut_windows(mono, rate, extractor.windowing)
    except AudioError as error:
        return TrackFailure(track_id, "AudioError", str(error))
    except (OSError, ValueError, MemoryError) as error:
        return TrackFailure(track_id, type(error).__name__, f"{path}: {error}")
    return TrackAudio(track_id, windows, rate, len(mono) / rate)


def prefetch(extractor: Extractor, tracks: Iterable[tuple[str, Path]], workers: int = 2,
             ahead: int = 8) -> Iterator[TrackAudio | TrackFailure]:
    """`prepare` every track in worker threads, at most `ahead` tracks ahead of the model."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for track_id, path in tracks:
            pending.append(pool.submit(prepare, extractor, track_id, path))
            if len(pending) >= ahead:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def embed_tracks(extractor: Extractor, tracks: Iterable[TrackAudio], batch_size: int
                 ) -> Iterator[tuple[TrackAudio, dict[str, torch.Tensor] | TrackFailure]]:
    """Run the model over the windows of many tracks in shared batches, then regroup by track.

    Yields each track with its per-window outputs (n_windows, …) on the CPU, or a failure
    if the model raised on the batch holding it.
    """
    queue: list[TrackAudio] = []
    queued_windows = 0
    for track in tracks:
        queue.append(track)
        queued_windows += len(track.windows)
        if queued_windows >= batch_size:
            yield from _run_queue(extractor, queue, batch_size)
            queue, queued_windows = [], 0
    if queue:
        yield from _run_queue(extractor, queue, batch_size)


def _run_queue(extractor: Extractor, queue: list[TrackAudio], batch_size: int) -> Iterator:
    try:
        outputs = _embed_windows(extractor, queue, batch_size)
    except (RuntimeError, ValueError) as error:
        reason = " ".join(str(error).split())[:300]
        for track in queue:
            yield track, TrackFailure(track.track_id, type(error).__name__, reason)
        return
    offset = 0
    for track in queue:
        n = len(track.windows)
        yield track, {name: out[offset : offset + n] for name, out in outputs.items()}
        offset += n


def _embed_windows(extractor: Extractor, queue: list[TrackAudio], batch_size: int
                   ) -> dict[str, torch.Tensor]:
    """All windows of the queued tracks through the model, `batch_size` at a time.

    Whole-track extractors (one window of varying length) run one track per call.
    """
    rate = queue[0].sample_rate
    if extractor.windowing.seconds is None:
        batches = [torch.from_numpy(track.windows) for track in queue]
    else:
        windows = np.concatenate([track.windows for track in queue])
        batches = list(torch.from_numpy(windows).split(batch_size))
    collected: dict[str, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for batch in batches:
            result = extractor.embed(batch.to(extractor.device), rate)
            for name, value in result.items():
                collected.setdefault(name, []).append(value.float().cpu())
    return {name: torch.cat(parts) for name, parts in collected.items()}


def pool(spec: OutputSpec, per_window: torch.Tensor) -> dict[str, np.ndarray]:
    """Pool one output over windows into the stored columns (see store/SCHEMA.md)."""
    if not spec.pooling:
        return {spec.name: per_window[0].numpy()}
    stats = {
        "mean": lambda x: x.mean(0),
        "std": lambda x: x.std(0, unbiased=False),
        "max": lambda x: x.amax(0),
        "min": lambda x: x.amin(0),
    }
    columns = {}
    for stat in spec.pooling:
        pooled = stats[stat](per_window).numpy()
        if spec.layers:
            for layer in range(spec.layers):
                columns[f"{spec.name}_l{layer:02d}_{stat}"] = pooled[layer]
        else:
            columns[f"{spec.name}_{stat}"] = pooled
    return columns


def model_hash(extractor: Extractor) -> str:
    """sha256 over the model files' names and bytes, or `none` for models without files."""
    files = sorted(extractor.model_files())
    if not files:
        return "none"
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


class RowBuilder:
    """Turns pooled outputs into Arrow feature batches with full provenance."""

    def __init__(self, extractor: Extractor, run_id: str) -> None:
        self.extractor = extractor
        self.constant = {
            "extractor": extractor.name,
            "config_hash": extractor.config_hash(),
            "config": json.dumps(extractor.config.to_dict(), sort_keys=True),
            "model_hash": model_hash(extractor),
            "versions": library_versions(),
            "run_id": run_id,
        }
        self.schema = self._schema()

    def row(self, track: TrackAudio, outputs: dict[str, torch.Tensor]) -> dict:
        row = {"track_id": track.track_id, "n_windows": len(track.windows),
               "seconds": track.seconds, "created_at": datetime.now(UTC), **self.constant}
        for spec in self.extractor.outputs:
            row.update(pool(spec, outputs[spec.name]))
        return row

    def table(self, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _schema(self) -> pa.Schema:
        fields = list(FEATURE_KEY_AND_PROVENANCE)
        names: dict[str, list[str]] = {}
        for spec in self.extractor.outputs:
            probe = pool(spec, torch.zeros((1, spec.layers, spec.dim) if spec.layers
                                           else (1, spec.dim)))
            for column in probe:
                fields.append(pa.field(column, embedding_type(spec.dim)))
                if spec.feature_names:
                    names[column] = list(spec.feature_names)
        metadata = {FEATURE_NAMES_KEY: json.dumps(names).encode()} if names else None
        return pa.schema(fields, metadata=metadata)


def extract_rows(builder: RowBuilder, tracks: Iterable[tuple[str, Path]], batch_size: int = 16
                 ) -> Iterator[dict | TrackFailure]:
    """Feature rows or failures for `tracks` = (track_id, path), in the order they finish.

    `builder.extractor` must already be loaded (`extractor.load(device)`).
    """
    extractor = builder.extractor
    failures: list[TrackFailure] = []

    def decoded() -> Iterator[TrackAudio]:
        for item in prefetch(extractor, tracks):
            if isinstance(item, TrackFailure):
                failures.append(item)
            else:
                yield item

    for track, outputs in embed_tracks(extractor, decoded(), batch_size):
        yield from _drain(failures)
        yield outputs if isinstance(outputs, TrackFailure) else builder.row(track, outputs)
    yield from _drain(failures)


def _drain(items: list) -> Iterator:
    while items:
        yield items.pop(0)
