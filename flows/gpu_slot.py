"""One heavy model per GPU at a time, across every flow run on the machine: a Prefect
global concurrency limit named `gpu` (limit 1) that a run holds while its model is
loaded and extracting on a GPU.

The limit lives in the Prefect server's database, so it only binds runs that talk to
the same server: with `PREFECT_API_URL` set. Runs on a temporary per-process server
(`mfs extract` without it) do not take it: a slot held by a process killed there would
never be released (no lease expiry without a long-lived server), and the store's
writer lock already serialises runs on one store. `mfs serve` creates the limit if it
is missing; so does the first run that needs it. Change it with
`prefect gcl update gpu --limit 2` (two models at once), or delete it to stop limiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL

GPU_LIMIT = "gpu"
LEASE_SECONDS = 300  # renewed while held; a crashed holder's slot frees after this long


def ensure_gpu_limit() -> bool:
    """Create the `gpu` limit (1 slot) unless it exists; True if it was created."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(GPU_LIMIT)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=GPU_LIMIT, limit=1))
        except ObjectAlreadyExists:
            return False  # another process created it first
        return True


def is_gpu(device: str) -> bool:
    from mfs.extractors.device import pick_device

    return pick_device(device).type != "cpu"


@contextmanager
def gpu_slot(device: str) -> Iterator[None]:
    """Hold a slot of the `gpu` limit for the block when `device` resolves to a GPU and a
    Prefect server is configured; otherwise just run the block."""
    if not PREFECT_API_URL.value() or not is_gpu(device):
        yield
        return
    ensure_gpu_limit()
    with concurrency(GPU_LIMIT, occupy=1, lease_duration=LEASE_SECONDS, strict=True):
        yield
