"""How an extraction run works, whatever it extracts: one record the CLI, the flows and
tests pass along (no Prefect import, so the CLI builds it before deciding to start one)."""

from __future__ import annotations

from dataclasses import dataclass

from mfs.flows.plan import MAX_ATTEMPTS

TRACKS_PER_PART = 64


@dataclass(frozen=True)
class ExtractSettings:
    """Plain values only. The flows take its fields as parameters of their own
    (`batch_size`, `device`, `tracks_per_part`), so a deployment run sets each one with
    `--param`."""

    batch_size: int = 16  # windows per model call
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    tracks_per_part: int = TRACKS_PER_PART  # tracks per batch task, and per stored part
    max_attempts: int = MAX_ATTEMPTS  # a track that failed this often is skipped
