"""Whole-track openSMILE functionals from a track streamed block by block.

`opensmile.Smile.process_signal` copies the whole signal three times (float, int16,
bytes) and openSMILE's wave level grows to hold all of it: about 1 GB beside the track
for an hour at 16 kHz. Here the track is written into openSMILE's external audio source
block by block while openSMILE runs in a thread, its wave level a ring buffer
(`source.conf`), so the audio in memory is bounded. The samples reach openSMILE as
`process_signal` hands them over (16-bit integers), so the features are the same.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

import numpy as np
import opensmile
from opensmile.core.config import config as smile_config
from opensmile.core.lib import OpenSMILE

from mfs.extractors.base import TrackBlocks

SOURCE = Path(__file__).with_name("source.conf")
RING_SECONDS = 4.0  # of audio openSMILE's wave ring buffer holds
CHUNK = 8192  # samples per write: well under the ring, so a write can always fit
WAIT = 0.002  # seconds between tries to write while openSMILE's ring buffer is full


@cache
def smile(feature_set: str) -> opensmile.Smile:
    """opensmile's `Smile` of a feature set's functionals: its config and feature names."""
    return opensmile.Smile(opensmile.FeatureSet[feature_set], opensmile.FeatureLevel.Functionals)


def functionals(feature_set: str, blocks: TrackBlocks, sample_rate: int) -> np.ndarray:
    """The functionals (float32) of the track `blocks()` yields, mono at `sample_rate`."""
    config = smile(feature_set)
    options = config._options()  # the feature set's own sink and buffer settings
    options.update(source=str(SOURCE), sampleRate=sample_rate,
                   bufferSamples=int(RING_SECONDS * sample_rate))
    api = OpenSMILE()
    api.initialize(config_file=config.config_path, options=options, loglevel=1)
    rows: list[np.ndarray] = []
    api.external_sink_set_callback_ex(smile_config.EXTERNAL_OUTPUT_COMPONENT,
                                      lambda data, meta: rows.append(data.copy()))
    failed: list[BaseException] = []

    def run() -> None:
        try:
            api.run()
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failed.append(error)

    runner = threading.Thread(target=run, name="mfs-opensmile", daemon=True)
    runner.start()
    stop = threading.Event()
    try:
        for block in blocks():
            # As process_signal converts (`* 32768`, then int16), clipped at full scale.
            pcm = np.clip(block * 32768.0, -32768, 32767).astype(np.int16)
            for start in range(0, len(pcm), CHUNK):
                data = pcm[start:start + CHUNK].tobytes()
                while not api.external_audio_source_write_data(
                        smile_config.EXTERNAL_SOURCE_COMPONENT, data):
                    if not runner.is_alive():
                        raise RuntimeError(f"openSMILE stopped early: {failed or 'no error'}")
                    stop.wait(WAIT)
    finally:
        api.external_audio_source_set_eoi(smile_config.EXTERNAL_SOURCE_COMPONENT)
        runner.join()
        api.free()
    if failed:
        raise RuntimeError(f"openSMILE failed: {failed[0]}")
    if not rows:
        raise ValueError("openSMILE computed no functionals (is the track too short?)")
    return np.asarray(rows[-1], dtype=np.float32).reshape(-1)
