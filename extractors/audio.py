"""Reading audio files: header probing and block-by-block decoding to float32.

soundfile (libsndfile) reads wav/flac/ogg/mp3/aiff quickly and exactly; PyAV (FFmpeg) takes
what libsndfile cannot (m4a/aac/opus/wma). Files are read in blocks, so an hour-long track
never has to be in memory at once. Every failure becomes one `AudioError` line naming the
file, so a scan or extraction can record it and move on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    import av.container  # imported where used: FFmpeg is only for what libsndfile cannot read

BLOCK_FRAMES = 1 << 16  # ~1.5 s at 44.1 kHz: big enough that per-block Python costs vanish


class AudioError(RuntimeError):
    """A file that cannot be read as audio; the message is one line naming the file."""


@dataclass(frozen=True)
class AudioInfo:
    format: str
    duration_s: float
    sample_rate: int
    channels: int


TAIL_FRAMES = 4096


def probe(path: Path) -> AudioInfo:
    """Read the header (no full decode) to learn duration, rate and channels.

    Where libsndfile can seek, the last few thousand frames are decoded too: a millisecond
    that catches the commonest damage, a file cut short (an interrupted download) whose
    header still promises the whole track.
    """
    try:
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: empty file (0 bytes)")
    except OSError as error:
        raise AudioError(f"{path}: {error.strerror or error}") from error
    try:
        with _open_soundfile(path) as handle:
            if handle.samplerate <= 0 or handle.frames <= 0:
                raise AudioError(f"{path}: no audio frames")
            info = AudioInfo(handle.format.lower(), handle.frames / handle.samplerate,
                             int(handle.samplerate), int(handle.channels))
            _decode_tail(handle, path)
        return info
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        if isinstance(sf_error, AudioError):
            raise
        return _probe_with_av(path, sf_error)


def _open_soundfile(path: Path) -> sf.SoundFile:
    """libsndfile's handle on `path`, refusing files without a header.

    For those libsndfile guesses from the extension (.au → 8 kHz µ-law), which turns any
    junk into "audio"; FFmpeg judges them instead.
    """
    handle = sf.SoundFile(str(path))
    if handle.format == "RAW":
        handle.close()
        raise sf.SoundFileRuntimeError("no audio header found")
    return handle


def _decode_tail(handle: sf.SoundFile, path: Path) -> None:
    if not handle.seekable():
        return
    try:
        handle.seek(max(0, handle.frames - TAIL_FRAMES))
        handle.read(TAIL_FRAMES, dtype="float32")
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(
            f"{path}: truncated or damaged: the header promises {handle.frames} frames but "
            f"the end cannot be decoded ({_one_line(error) or 'decode error'})") from error


def _open_av(path: Path, first_error: Exception) -> av.container.InputContainer:
    """`path` opened by FFmpeg, with at least one audio stream, else one AudioError line
    (naming FFmpeg's reason, or libsndfile's `first_error` when FFmpeg gives none)."""
    import av

    try:
        container = av.open(str(path))
    except Exception as av_error:  # noqa: BLE001 - any decoder failure means unreadable
        reason = _one_line(av_error) or _one_line(first_error)
        raise AudioError(f"{path}: not readable as audio ({reason})") from av_error
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{path}: no audio stream")
    return container


def _probe_with_av(path: Path, first_error: Exception) -> AudioInfo:
    with _open_av(path, first_error) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        if duration <= 0 or not stream.rate:
            raise AudioError(f"{path}: no audio frames")
        return AudioInfo(container.format.name.split(",")[0], duration,
                         int(stream.rate), int(stream.channels))


class AudioReader(ABC):
    """An open audio file, decoded block by block (use as a context manager).

    `blocks` yields float32 arrays of shape (frames, channels) in file order; together they
    are the whole file. A decoder error at any point is an `AudioError` naming the file.
    """

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self.sample_rate = sample_rate

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """The file's samples in blocks of about `frames` frames (the last may be shorter)."""
        total = 0
        with self._decoding():
            for block in self._blocks(frames):
                total += len(block)
                yield block
        if total == 0:
            raise AudioError(f"{self.path}: decoded to zero samples")

    @contextmanager
    def _decoding(self) -> Iterator[None]:
        """A decoder failure part-way through is one `AudioError` line naming the file."""
        try:
            yield
        except AudioError:
            raise
        except Exception as error:  # noqa: BLE001 - any decoder failure means unreadable
            raise AudioError(f"{self.path}: decoding failed ({_one_line(error)})") from error

    @abstractmethod
    def _blocks(self, frames: int) -> Iterator[np.ndarray]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def open_audio(path: Path) -> AudioReader:
    """Open `path` with libsndfile, or with FFmpeg for what libsndfile cannot read."""
    try:
        return _SoundFileReader(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        return _AvReader(path, sf_error)


class _SoundFileReader(AudioReader):
    def __init__(self, path: Path) -> None:
        self._file = _open_soundfile(path)
        super().__init__(path, int(self._file.samplerate))

    def _blocks(self, frames: int) -> Iterator[np.ndarray]:
        while len(block := self._file.read(frames, dtype="float32", always_2d=True)):
            yield block

    def close(self) -> None:
        self._file.close()


class _AvReader(AudioReader):
    def __init__(self, path: Path, first_error: Exception) -> None:
        self._container = _open_av(path, first_error)
        self._stream = self._container.streams.audio[0]
        super().__init__(path, int(self._stream.rate))

    def _blocks(self, frames: int) -> Iterator[np.ndarray]:
        """FFmpeg frames are ~1k samples; gathering them to `frames` keeps per-block work
        (down-mix, resampling, windowing) in big, cheap numpy calls."""
        pending: list[np.ndarray] = []
        count = 0
        for frame in self._container.decode(self._stream):
            pending.append(_frame_samples(frame))
            count += len(pending[-1])
            if count >= frames:
                yield np.concatenate(pending)
                pending, count = [], 0
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        self._container.close()


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """One FFmpeg frame as (frames, channels) float32, integers scaled to [-1, 1)."""
    array = frame.to_ndarray()
    samples = array.T if frame.format.is_planar else array.reshape(-1, frame.layout.nb_channels)
    if np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        return (samples / scale).astype(np.float32)
    return samples.astype(np.float32, copy=False)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]
