"""The shared extraction pipeline: decode → mono → resample → windows → batches → pool.

Written once for every extractor (see `base.py`). Worker threads decode tracks ahead of
the model (libsndfile, FFmpeg and soxr release the GIL), block by block: each block is
down-mixed, resampled by a streaming resampler and cut into windows (`WindowStream`),
and the windows wait in a bounded queue. So memory is bounded in windows, not tracks,
and an hour-long track is never held whole. Windows of several tracks share a batch so
short clips keep the model busy, and each track's outputs are pooled batch by batch
(`TrackPool`) into the fixed-size vectors of its feature row; a config that keeps windows
(`keep_windows`) also keeps each window's outputs and start until its track ends
(`KeptWindows`), then hands them out with its feature row. Whole-track extractors
(`Windowing(seconds=None)`) that read blocks (`Extractor.reads_blocks`) get each track as
`TrackBlocks`: decoded ahead by the worker when it is short (`HELD_SAMPLES`), else decoded
afresh for each pass the extractor makes, so no track is held whole; other whole-track
extractors get each track decoded whole, as one window. glibc is told to keep freed memory
(`keep_freed_memory`), since re-faulting a CPU model's large activations every batch costs
as much as the model.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import soxr
import torch

from mfs.audio.decode import AudioError, AudioReader, open_audio
from mfs.extractors.base import Extractor, OutputSpec
from mfs.extractors.device import torch_threads
from mfs.extractors.pooling import TrackPool, stored_columns, window_columns
from mfs.extractors.precision import autocast
from mfs.extractors.windowing import WindowStream, window_samples
from mfs.store.feature_rows import FeatureRows, WindowRows
from mfs.store.provenance import files_sha256
from mfs.store.text import squeeze


@dataclass(frozen=True)
class TrackFailure:
    track_id: str
    error_class: str
    reason: str


@dataclass(frozen=True)
class TrackWindow:
    """One window of a track on its way to the model. `track` is the track's position in
    the input, which keys its state (track IDs need not be unique to the pipeline)."""

    track: int
    track_id: str
    samples: np.ndarray  # (window_samples,) float32, mono
    sample_rate: int
    length: int  # leading samples that are real audio; the rest is a short track's padding
    start: int  # the window's first sample in the track (its timestamp, times the rate)


@dataclass(frozen=True)
class TrackPasses:
    """A whole track for an extractor that reads blocks: the track's only item on its way
    to the model, which ends it (`_run_track`)."""

    track: int
    track_id: str
    blocks: DecodedBlocks
    sample_rate: int


@dataclass(frozen=True)
class TrackFile:
    """A whole track for an extractor that decodes files itself: its path, undecoded; the
    track's only item on its way to the model, which ends it (`_run_file`)."""

    track: int
    track_id: str
    path: Path


@dataclass(frozen=True)
class TrackEnd:
    """Follows a track's last window: how much audio it had, or why it failed."""

    track: int
    track_id: str
    seconds: float
    failure: TrackFailure | None = None


def mono_blocks(audio: AudioReader, target_rate: int | None) -> Iterator[np.ndarray]:
    """The file's samples block by block: channels averaged, resampled (soxr, high quality)
    when asked. The streaming resampler gives the very samples a one-shot resample would."""
    rate = audio.sample_rate
    resampler = None
    if target_rate is not None and target_rate != rate:
        resampler = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    for block in audio.blocks():
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        if not np.all(np.isfinite(mono)):
            raise AudioError(f"{audio.path}: decoded samples contain NaN or infinity")
        yield mono if resampler is None else resampler.resample_chunk(mono)
    if resampler is not None:
        yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def load_mono(path: Path, target_rate: int | None) -> tuple[np.ndarray, int]:
    """The whole track as one mono array at `target_rate` (None: the file's own rate)."""
    with open_audio(path) as audio:
        mono = np.concatenate(list(mono_blocks(audio, target_rate)))
        return mono, target_rate or audio.sample_rate


# Samples of a track (8 MiB of float32; 47 s at 44.1 kHz) its worker decodes ahead for an
# extractor that reads blocks: a clip is decoded once, beside the model, as for any other
# extractor; a longer track is decoded in the model's thread, pass by pass.
HELD_SAMPLES = 1 << 21


class DecodedBlocks:
    """`TrackBlocks` of one file at `sample_rate`: the blocks held when the whole track
    was decoded ahead, else a fresh decode per pass. `n_samples` counts the samples of the
    last pass that ran to the end."""

    def __init__(self, path: Path, sample_rate: int, held: list[np.ndarray] | None) -> None:
        self.path, self.sample_rate, self.held = path, sample_rate, held
        self.n_samples = sum(map(len, held)) if held is not None else 0

    def __call__(self) -> Iterator[np.ndarray]:
        if self.held is not None:
            yield from self.held
            return
        count = 0
        with open_audio(self.path) as audio:
            for block in mono_blocks(audio, self.sample_rate):
                count += len(block)
                yield block
        self.n_samples = count


def decode_ahead(path: Path, target_rate: int | None) -> DecodedBlocks:
    """The track's `DecodedBlocks`, with its blocks held when it has at most `HELD_SAMPLES`
    samples (the decode stops a block past that otherwise)."""
    with open_audio(path) as audio:
        rate = target_rate or audio.sample_rate
        held: list[np.ndarray] | None = []
        count = 0
        for block in mono_blocks(audio, rate):
            held.append(block)
            count += len(block)
            if count > HELD_SAMPLES:
                held = None
                break
    return DecodedBlocks(path, rate, held)


def stream_track(extractor: Extractor, track: int, track_id: str, path: Path
                 ) -> Iterator[TrackWindow | TrackPasses | TrackFile | TrackEnd]:
    """The windows of one track as they are decoded, then its `TrackEnd`; or, for an
    extractor that reads blocks, its `TrackPasses` alone (its `TrackFile` alone for one
    that reads files).

    Every error ends the track with a failure instead of raising, so one bad file never
    stops a run.
    """
    if extractor.reads_file:
        yield TrackFile(track, track_id, path)
        return
    try:
        if extractor.windowing.seconds is None and extractor.reads_blocks:
            blocks = decode_ahead(path, extractor.sample_rate)
            yield TrackPasses(track, track_id, blocks, blocks.sample_rate)
            return
        if extractor.windowing.seconds is None:
            mono, rate = load_mono(path, extractor.sample_rate)
            yield TrackWindow(track, track_id, mono, rate, len(mono), 0)
            seconds = len(mono) / rate
        else:
            with open_audio(path) as audio:
                rate = extractor.sample_rate or audio.sample_rate
                windows = WindowStream(*window_samples(extractor.windowing, rate))
                for block in mono_blocks(audio, rate):
                    for start, window in windows.feed(block):
                        yield TrackWindow(track, track_id, window, rate, len(window), start)
                # The last windows are end-aligned (all real) or, for a track shorter than
                # one window, its only window, zero-padded past the track's samples.
                for start, window in windows.finish():
                    yield TrackWindow(track, track_id, window, rate,
                                      min(len(window), windows.n_samples - start), start)
            seconds = windows.n_samples / rate
    except AudioError as error:
        yield TrackEnd(track, track_id, 0.0, TrackFailure(track_id, "AudioError", str(error)))
        return
    except (OSError, ValueError, MemoryError) as error:
        failure = TrackFailure(track_id, type(error).__name__, f"{path}: {error}")
        yield TrackEnd(track, track_id, 0.0, failure)
        return
    yield TrackEnd(track, track_id, seconds)


@dataclass(frozen=True)
class _WorkerCrash:
    """A bug (not a bad file) in a decoding thread, re-raised in the consuming thread."""

    error: BaseException


_WORKER_DONE = object()


def prefetch(extractor: Extractor, tracks: Iterable[tuple[str, Path]], workers: int,
             ahead: int) -> Iterator[TrackWindow | TrackPasses | TrackFile | TrackEnd]:
    """`stream_track` over `tracks` in `workers` threads, at most `ahead` items waiting.

    The bound is what keeps memory flat: a thread that decodes faster than the model
    consumes blocks on the full queue instead of piling up windows.
    """
    items: queue.Queue = queue.Queue(maxsize=ahead)
    todo = enumerate(tracks)
    todo_lock = threading.Lock()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            while not stop.is_set():
                with todo_lock:
                    job = next(todo, None)
                if job is None:
                    break
                index, (track_id, path) = job
                for item in stream_track(extractor, index, track_id, Path(path)):
                    if not put(item):
                        return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, re-raised
            put(_WorkerCrash(error))
        finally:
            put(_WORKER_DONE)

    threads = [threading.Thread(target=work, name=f"mfs-decode-{i}", daemon=True)
               for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        running = workers
        while running:
            item = items.get()
            if item is _WORKER_DONE:
                running -= 1
            elif isinstance(item, _WorkerCrash):
                raise item.error
            else:
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()


class KeptWindows:
    """One track's per-window outputs, starts and real lengths (`keep_windows`), kept while
    its windows pass through the model and handed out with its feature row when it ends:
    at most the open tracks' windows are held, never a run's."""

    def __init__(self) -> None:
        self.starts_s: list[float] = []
        self.durations_s: list[float] = []
        self.outputs: list[dict[str, np.ndarray]] = []

    def add(self, windows: list[TrackWindow], outputs: dict[str, np.ndarray]) -> None:
        """Keep the outputs of some of the track's windows, in the order they were cut."""
        self.starts_s += [window.start / window.sample_rate for window in windows]
        self.durations_s += [window.length / window.sample_rate for window in windows]
        self.outputs.append(outputs)

    def columns(self, specs: tuple[OutputSpec, ...]) -> dict[str, np.ndarray]:
        """One (windows × dim) matrix per window column (`window_columns`)."""
        columns = {}
        for spec in specs:
            matrix = np.concatenate([outputs[spec.name] for outputs in self.outputs])
            for column, layer in window_columns(spec):
                columns[column] = matrix if layer is None else matrix[:, layer]
        return columns


@dataclass
class _OpenTrack:
    """A track whose windows are still on their way through the model."""

    track_id: str
    pool: TrackPool
    kept: KeptWindows | None = None  # only when the config keeps windows
    in_batch: int = 0  # of its windows, how many wait in the current batch
    end: TrackEnd | None = None
    failure: TrackFailure | None = None

    def add(self, windows: list[TrackWindow], outputs: dict[str, np.ndarray]) -> None:
        """Pool the outputs of some of its windows (and keep them, if asked)."""
        self.pool.add(outputs)
        if self.kept is not None:
            self.kept.add(windows, outputs)


@dataclass(frozen=True)
class TrackRows:
    """A finished track's feature row and, when its config keeps windows, its window rows
    (`windows/`), handed out together so that they are stored together."""

    row: dict
    windows: pa.Table | None = None


@contextlib.contextmanager
def _model_call(extractor: Extractor) -> Iterator[None]:
    """What every model call runs in: inference mode, under the extractor's resolved
    precision (autocast; nothing for float32)."""
    with torch.inference_mode(), autocast(extractor.device, extractor.precision):
        yield


def _on_cpu(result: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Model outputs as float32 numpy arrays, whatever precision computed them."""
    return {name: value.float().cpu().numpy() for name, value in result.items()}


def _embed(extractor: Extractor, batch: list[TrackWindow]) -> dict[str, np.ndarray]:
    """One model call on a batch of equally long windows; outputs back on the CPU."""
    samples = batch[0].samples[None] if len(batch) == 1 else np.stack([w.samples for w in batch])
    windows = torch.from_numpy(samples).to(extractor.device)
    with _model_call(extractor):
        if extractor.uses_lengths:
            lengths = torch.tensor([w.length for w in batch], device=extractor.device)
            result = extractor.embed(windows, batch[0].sample_rate, lengths=lengths)
        else:
            result = extractor.embed(windows, batch[0].sample_rate)
    return _on_cpu(result)


def _run_track(extractor: Extractor, item: TrackPasses, track: _OpenTrack) -> None:
    """Embed a track that the extractor reads by blocks, here in the model's thread (one
    track's features in memory at a time), and end it: a bad file or a failing model
    fails only this track."""
    try:
        with _model_call(extractor):
            result = extractor.embed_track(item.blocks, item.sample_rate)
        track.pool.add(_on_cpu(result))
    except AudioError as error:
        track.failure = TrackFailure(item.track_id, "AudioError", squeeze(error, 300))
    except (RuntimeError, ValueError, OSError, MemoryError) as error:
        track.failure = TrackFailure(item.track_id, type(error).__name__,
                                     f"{item.blocks.path}: {squeeze(error, 300)}")
    track.end = TrackEnd(item.track, item.track_id, item.blocks.n_samples / item.sample_rate)


def _run_file(extractor: Extractor, item: TrackFile, track: _OpenTrack) -> None:
    """Embed a track that the extractor decodes itself from its file, and end it: a bad
    file or a failing extractor fails only this track."""
    seconds = 0.0
    try:
        result, seconds = extractor.embed_file(item.path)
        track.pool.add({name: np.asarray(value, np.float32) for name, value in result.items()})
    except (RuntimeError, ValueError, OSError, MemoryError) as error:
        track.failure = TrackFailure(item.track_id, type(error).__name__,
                                     f"{item.path}: {squeeze(error, 300)}")
    track.end = TrackEnd(item.track, item.track_id, seconds)


def _run_batch(extractor: Extractor, batch: list[TrackWindow],
               open_tracks: dict[int, _OpenTrack]) -> None:
    """Embed `batch` and pool each window's outputs into its track; if the model raises,
    every track with a window in the batch fails (the others go on)."""
    owners = np.array([window.track for window in batch])
    outputs, error_class, reason = None, "", ""
    try:
        outputs = _embed(extractor, batch)
    except (RuntimeError, ValueError) as error:
        error_class, reason = type(error).__name__, squeeze(error, 300)
    for index in dict.fromkeys(owners.tolist()):
        track = open_tracks.get(index)
        if track is None:  # failed while decoding and already reported
            continue
        rows = owners == index
        track.in_batch -= int(rows.sum())
        if outputs is None:
            track.failure = track.failure or TrackFailure(track.track_id, error_class, reason)
        elif track.failure is None:
            track.add([window for window in batch if window.track == index],
                      {name: value[rows] for name, value in outputs.items()})


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def keep_freed_memory() -> None:
    """Make glibc keep freed memory for reuse instead of handing it back to the OS.

    A model on the CPU allocates its big activations afresh every batch (musicnn at batch
    16: ~150 MB per front-end conv output). glibc serves blocks over 32 MB with mmap and
    unmaps them when freed, so every batch the kernel faults in and zeroes those pages
    again: measured, about half of musicnn's CPU time (bench/RESULTS.md). Served from a
    heap that is never trimmed, the pages are reused. The cost: the process keeps its peak
    heap until it exits, which a batch job does anyway. Process-wide; a no-op off glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 40)
    libc.mallopt(_M_TOP_PAD, 1 << 28)  # grow the heap in big steps: fewer, larger faults


def extract_rows(builder: RowBuilder, tracks: Iterable[tuple[str, Path]], batch_size: int = 16,
                 workers: int = 2) -> Iterator[dict | TrackFailure]:
    """Feature rows or failures for `tracks`, as `extract_tracks` gives them, for callers
    that want the pooled rows only."""
    for item in extract_tracks(builder, tracks, batch_size, workers):
        yield item if isinstance(item, TrackFailure) else item.row


def extract_tracks(builder: RowBuilder, tracks: Iterable[tuple[str, Path]],
                   batch_size: int = 16, workers: int = 2) -> Iterator[TrackRows | TrackFailure]:
    """Each track's rows (`TrackRows`) or failure for `tracks` = (track_id, path), in the
    order they finish.

    `builder.extractor` must already be loaded (`extractor.load(device)`). `workers`
    threads decode; at most `2 * batch_size` decoded windows wait for the model (one track
    per worker for whole-track extractors, whose windows are whole tracks, or at most
    `HELD_SAMPLES` of it for those that read blocks). On the CPU the
    model runs with the extractor's preferred torch thread count (`cpu_threads`).
    """
    keep_freed_memory()
    extractor = builder.extractor
    whole_track = extractor.windowing.seconds is None
    batch_limit = 1 if whole_track else batch_size  # whole tracks differ in length
    ahead = workers if whole_track else 2 * batch_size
    open_tracks: dict[int, _OpenTrack] = {}
    batch: list[TrackWindow] = []

    def finished() -> Iterator[TrackRows | TrackFailure]:
        done = [index for index, track in open_tracks.items()
                if track.end is not None and (track.failure or not track.in_batch)]
        for index in done:
            track = open_tracks.pop(index)
            yield track.failure or builder.track(track.track_id, track.end.seconds,
                                                 track.pool, track.kept)

    with torch_threads(extractor.device, extractor.cpu_threads):
        for item in prefetch(extractor, tracks, workers, ahead):
            track = open_tracks.get(item.track)
            if track is None:
                kept = KeptWindows() if extractor.keeps_windows else None
                track = open_tracks[item.track] = _OpenTrack(
                    item.track_id, TrackPool(extractor.outputs), kept)
            if isinstance(item, TrackEnd):
                track.end = item
                track.failure = track.failure or item.failure
            elif isinstance(item, TrackPasses):
                _run_track(extractor, item, track)
            elif isinstance(item, TrackFile):
                _run_file(extractor, item, track)
            elif track.failure is None:
                if batch and batch[0].sample_rate != item.sample_rate:  # native-rate extractors
                    _run_batch(extractor, batch, open_tracks)
                    batch = []
                batch.append(item)
                track.in_batch += 1
                if len(batch) >= batch_limit:
                    _run_batch(extractor, batch, open_tracks)
                    batch = []
            yield from finished()
        if batch:
            _run_batch(extractor, batch, open_tracks)
        yield from finished()


def model_hash(extractor: Extractor) -> str:
    """sha256 over the model files' names and bytes, or `none` for models without files."""
    files = extractor.model_files()
    return files_sha256(files) if files else "none"


def _columns(extractor: Extractor, columns_of: Callable[[OutputSpec], list[tuple]]
             ) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Sizes and per-dimension names of the columns `columns_of` makes of each output."""
    dims: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for spec in extractor.outputs:
        for column, *_ in columns_of(spec):
            dims[column] = spec.dim
            if spec.feature_names:
                names[column] = list(spec.feature_names)
    return dims, names


class RowBuilder:
    """Feature rows of one loaded extractor from its tracks' pooled outputs, built by the
    store's one row builder (`FeatureRows`) with the extractor's name, config, output
    columns, model hash and resolved precision; and, when its config keeps windows, the
    window rows (`WindowRows`) with the same provenance."""

    def __init__(self, extractor: Extractor, run_id: str) -> None:
        dims, names = _columns(extractor, stored_columns)
        self.extractor = extractor
        self.rows = FeatureRows(extractor.name, extractor.config.to_dict(), dims,
                                model_hash=model_hash(extractor), run_id=run_id,
                                feature_names=names, code=extractor.code_version(),
                                precision=extractor.precision)
        self.windows = None
        if extractor.keeps_windows:
            dims, names = _columns(extractor, window_columns)
            layers = {spec.name: spec.layers for spec in extractor.outputs if spec.layers}
            self.windows = WindowRows(self.rows, dims, layers=layers, feature_names=names)

    def row(self, track_id: str, seconds: float, pool: TrackPool) -> dict:
        """The finished track's row from its pooled outputs."""
        return self.rows.row(track_id, pool.columns(), n_windows=pool.n_windows,
                             seconds=seconds)

    def track(self, track_id: str, seconds: float, pool: TrackPool,
              kept: KeptWindows | None) -> TrackRows:
        """The finished track's row, and its window rows stamped with the row's time."""
        row = self.row(track_id, seconds, pool)
        if kept is None:
            return TrackRows(row)
        windows = self.windows.table(track_id, row["created_at"], kept.starts_s,
                                     kept.durations_s, kept.columns(self.extractor.outputs))
        return TrackRows(row, windows)

    def table(self, rows: list[dict]) -> pa.Table:
        """A batch of rows made by `row`."""
        return self.rows.table(rows)
