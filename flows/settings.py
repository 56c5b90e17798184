"""How an extraction run works, whatever it extracts: one record the CLI, the flows and
tests pass along (no Prefect import, so the CLI builds it before deciding to start one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfs.flows.plan import MAX_ATTEMPTS
from mfs.store import Store

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


def flow_store(store: str | None) -> Store:
    """The store a flow run's `store` parameter names (None: `$MFS_STORE`, else data/store).

    An empty string is refused: it is what `prefect deploy` makes of `{{ $MFS_STORE }}` in
    prefect.yaml when MFS_STORE was not set, and would otherwise mean the worker's current
    directory."""
    if store == "":
        raise ValueError("the run's store parameter is empty: give the store root "
                         "(prefect.yaml takes it from $MFS_STORE when `prefect deploy` runs)")
    return Store(store)


def check_cluster(address: str | None, workers: int) -> None:
    """A Dask cluster is an address or a number of local workers, not both (the CLI's
    `--dask-address` / `--dask-workers`, a deployment run's `dask_address` /
    `dask_workers`, mfs.toml's [defaults])."""
    if workers < 0 or (workers and address):
        raise ValueError("give --dask-workers N (N > 0) or --dask-address (deployment "
                         "parameters dask_workers, dask_address), not both")
