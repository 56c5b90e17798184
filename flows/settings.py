"""How an extraction run works, whatever it extracts: one record the CLI, the flows and
tests pass along (no Prefect import, so the CLI builds it before deciding to start one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfs.flows.plan import MAX_ATTEMPTS

if TYPE_CHECKING:
    from mfs.extractors.base import Extractor

TRACKS_PER_PART = 64


@dataclass(frozen=True)
class ExtractSettings:
    """Plain values only. The flows take its fields as parameters of their own
    (`batch_size`, `device`, `tracks_per_part`), so a deployment run sets each one with
    `--param`."""

    batch_size: int | None = None  # windows per model call; None: each extractor's own
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    tracks_per_part: int = TRACKS_PER_PART  # tracks per batch task, and per stored part
    max_attempts: int = MAX_ATTEMPTS  # a track that failed this often is skipped

    def batch_size_for(self, extractor: Extractor) -> int:
        """Windows per model call for `extractor`: the run's, else the extractor's own
        (`Extractor.default_batch_size`: vggish 64, most 16)."""
        return self.batch_size if self.batch_size is not None else extractor.default_batch_size
