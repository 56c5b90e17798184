"""Reading audio files: header probing and decoding to float32.

soundfile (libsndfile) reads wav/flac/ogg/mp3/aiff quickly and exactly; PyAV (FFmpeg) takes
what libsndfile cannot (m4a/aac/opus/wma). Every failure becomes one `AudioError` line
naming the file, so a scan or extraction can record it and move on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(RuntimeError):
    """A file that cannot be read as audio; the message is one line naming the file."""


@dataclass(frozen=True)
class AudioInfo:
    format: str
    duration_s: float
    sample_rate: int
    channels: int


def probe(path: Path) -> AudioInfo:
    """Read only the header (no full decode) to learn duration, rate and channels."""
    try:
        info = sf.info(str(path))
        if info.samplerate <= 0 or info.frames <= 0:
            raise AudioError(f"{path}: no audio frames")
        return AudioInfo(info.format.lower(), info.frames / info.samplerate,
                         int(info.samplerate), int(info.channels))
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        if isinstance(sf_error, AudioError):
            raise
        return _probe_with_av(path, sf_error)


def _probe_with_av(path: Path, first_error: Exception) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: no audio stream")
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
    except AudioError:
        raise
    except Exception as av_error:  # noqa: BLE001 - any decoder failure means unreadable
        reason = _one_line(av_error) or _one_line(first_error)
        raise AudioError(f"{path}: not readable as audio ({reason})") from av_error


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 of shape (frames, channels) and its sample rate."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        data, rate = _decode_with_av(path, sf_error)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: decoded to zero samples")
    return data, rate


def _decode_with_av(path: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            chunks = []
            for frame in container.decode(stream):
                array = frame.to_ndarray()
                if frame.format.is_planar:
                    chunks.append(array.T)
                else:
                    chunks.append(array.reshape(-1, frame.layout.nb_channels))
            rate = stream.rate
    except Exception as av_error:  # noqa: BLE001 - any decoder failure means unreadable
        reason = _one_line(av_error) or _one_line(first_error)
        raise AudioError(f"{path}: not readable as audio ({reason})") from av_error
    if not chunks:
        raise AudioError(f"{path}: decoded to zero samples")
    data = np.concatenate(chunks).astype(np.float32)
    if np.issubdtype(chunks[0].dtype, np.integer):
        data /= float(np.iinfo(chunks[0].dtype).max) + 1.0
    return data, int(rate)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]
