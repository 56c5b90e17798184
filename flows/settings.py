"""How an extraction run works, whatever it extracts: one record the CLI, the flows and
tests pass along (no Prefect import, so the CLI builds it before deciding to start one)."""

from __future__ import annotations

from dataclasses import dataclass

from mfs.flows.plan import MAX_ATTEMPTS
from mfs.store import Store

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
