"""Reading audio files: header probing and block-by-block decoding to float32.

soundfile (libsndfile) reads wav/flac/ogg/mp3/aiff quickly and exactly; PyAV (FFmpeg) takes
what libsndfile cannot (m4a/aac/opus/wma). Files are read in blocks, so an hour-long track
never has to be in memory at once. Every failure becomes one `AudioError` line naming the
file, so a scan or extraction can record it and move on.

libmpg123, libsndfile's MP3 decoder, prints its complaints about damaged frames straight
to file descriptor 2, where they would scroll over progress bars and the one-line errors.
MP3 reads by libsndfile therefore run with fd 2 pointed at a scratch file
(`_c_stderr_to`), and what the decoder said goes into the failure reason, if the file
fails, instead of onto the terminal. (FFmpeg prints nothing: PyAV leaves its log off.)
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import threading
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
MESSAGE_CHARS = 300  # of a C decoder's messages kept in a failure reason


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
    if _regular_file(path).st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    messages: list[str] = []
    try:
        with _open_soundfile(path, messages) as handle:
            if handle.samplerate <= 0 or handle.frames <= 0:
                raise AudioError(f"{path}: no audio frames")
            info = AudioInfo(handle.format.lower(), handle.frames / handle.samplerate,
                             int(handle.samplerate), int(handle.channels))
            _decode_tail(handle, path, messages)
        return info
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        if isinstance(sf_error, AudioError):
            raise _with_messages(sf_error, messages) from sf_error
        try:
            return _probe_with_av(path, sf_error)
        except AudioError as error:
            raise _with_messages(error, messages) from error


def _regular_file(path: Path) -> os.stat_result:
    """`path`'s stat, refusing what is no regular file: opening a FIFO waits for a writer,
    forever, with the store's lock held."""
    try:
        st = path.stat()
    except OSError as error:
        raise AudioError(f"{path}: {error.strerror or error}") from error
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: not a regular file (a FIFO, socket or device)")
    return st


def _open_soundfile(path: Path, messages: list[str]) -> sf.SoundFile:
    """libsndfile's handle on `path`, refusing files without a header; what its MP3
    decoder prints meanwhile goes into `messages`.

    For files without a header libsndfile guesses from the extension (.au → 8 kHz µ-law),
    which turns any junk into "audio"; FFmpeg judges them instead.
    """
    with _c_stderr_to(messages, path.suffix.lower() == ".mp3"):
        handle = sf.SoundFile(str(path))
    if handle.format == "RAW":
        handle.close()
        raise sf.SoundFileRuntimeError("no audio header found")
    return handle


def _decode_tail(handle: sf.SoundFile, path: Path, messages: list[str]) -> None:
    if not handle.seekable():
        return
    try:
        with _c_stderr_to(messages, _prints_to_fd2(handle)):
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


_capture_lock = threading.Lock()
_scratch: list = []  # the one scratch file fd 2 points at while a capture runs


def _prints_to_fd2(handle: sf.SoundFile) -> bool:
    """Whether libsndfile decodes `handle` with libmpg123, which writes to fd 2."""
    return handle.format == "MP3"


@contextmanager
def _c_stderr_to(messages: list[str], capture: bool = True) -> Iterator[None]:
    """Point fd 2 at a scratch file for the block, adding what C code wrote to `messages`.

    fd 2 belongs to the whole process, so captures take turns (a lock) and only MP3 reads
    ask for one: the other formats' decoding threads still run side by side. Anything
    another thread writes to stderr meanwhile lands in the capture too, which is why the
    capture is as short as one decoder call.
    """
    if not capture:
        yield
        return
    with _capture_lock:
        if not _scratch:
            _scratch.append(tempfile.TemporaryFile())  # noqa: SIM115 - kept for the process
        scratch = _scratch[0]
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            scratch.seek(0)
            text = scratch.read().decode("utf-8", "replace")
            scratch.seek(0)
            scratch.truncate()
            messages.extend(line.strip() for line in text.splitlines() if line.strip())


def _with_messages(error: AudioError, messages: list[str]) -> AudioError:
    """`error` with what the C decoder said about the file (its error lines, else all)."""
    if not messages:
        return error
    said = [m for m in messages if "error" in m.lower()] or messages
    text = "; ".join(dict.fromkeys(said))
    if len(text) > MESSAGE_CHARS:
        text = text[: MESSAGE_CHARS - 1] + "…"
    return AudioError(f"{error} (decoder said: {text})")


class AudioReader(ABC):
    """An open audio file, decoded block by block (use as a context manager).

    `blocks` yields float32 arrays of shape (frames, channels) in file order; together they
    are the whole file. A decoder error at any point is an `AudioError` naming the file.
    """

    def __init__(self, path: Path, sample_rate: int, messages: list[str]) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.messages = messages  # what the C decoder printed, for the failure reason

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
        except AudioError as error:
            raise _with_messages(error, self.messages) from error
        except Exception as error:  # noqa: BLE001 - any decoder failure means unreadable
            failure = AudioError(f"{self.path}: decoding failed ({_one_line(error)})")
            raise _with_messages(failure, self.messages) from error

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
    _regular_file(path)
    messages: list[str] = []
    try:
        return _SoundFileReader(path, messages)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        try:
            return _AvReader(path, sf_error, messages)
        except AudioError as error:
            raise _with_messages(error, messages) from error


class _SoundFileReader(AudioReader):
    def __init__(self, path: Path, messages: list[str]) -> None:
        self._file = _open_soundfile(path, messages)
        self._capture = _prints_to_fd2(self._file)
        super().__init__(path, int(self._file.samplerate), messages)

    def _blocks(self, frames: int) -> Iterator[np.ndarray]:
        while len(block := self._read(frames)):
            yield block

    def _read(self, frames: int) -> np.ndarray:
        with _c_stderr_to(self.messages, self._capture):
            return self._file.read(frames, dtype="float32", always_2d=True)

    def close(self) -> None:
        self._file.close()


class _AvReader(AudioReader):
    def __init__(self, path: Path, first_error: Exception, messages: list[str]) -> None:
        self._container = _open_av(path, first_error)
        self._stream = self._container.streams.audio[0]
        super().__init__(path, int(self._stream.rate), messages)

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
