"""`mfs serve`: one long-lived process that serves the store's deployments.

Deployments (each run executes in a child process of this one):
- `extract-library/<library>` for every scanned library, on its cron from `mfs.toml`;
- `backfill-model/<extractor>` for every registered extractor;
- `export-training-table/<library>` for every scanned library.

Prefect's `serve()` takes a fixed list, so this drives Prefect's `Runner` itself: the
runner polls for runs of whatever deployments it holds at that moment, so a watcher
beside it adds the deployments of a library scanned after start-up, and applies an
edited `mfs.toml` (schedules, defaults) to the deployments, without a restart. An edit
that does not read is logged in one line and the deployments keep what they had.
Every deployment's `store` parameter defaults to this process's store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule
from prefect.runner import Runner
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY,
    temporary_settings,
)

from mfs.extractors import registry
from mfs.flows.export import export_training_table
from mfs.flows.extract import backfill_model, extract_library
from mfs.flows.gpu_slot import GPU_LIMIT, ensure_gpu_limit
from mfs.flows.serve_config import CONFIG_NAME, ServeConfig, read_config
from mfs.store import Store


def require_api_url() -> str:
    """The configured Prefect server, or one line saying how to set one."""
    url = PREFECT_API_URL.value()
    if not url:
        raise RuntimeError(
            "mfs serve needs a Prefect server: start one (prefect server start --host "
            "127.0.0.1 --port 4200) and set PREFECT_API_URL=http://127.0.0.1:4200/api "
            "(deployments served on a temporary server die with it)")
    return url


def check_schedules(config: ServeConfig) -> dict[str, CronSchedule]:
    """Each library's cron as Prefect's schedule; a bad cron or timezone in one line."""
    schedules = {}
    for library, cron in config.schedules.items():
        try:
            schedules[library] = CronSchedule(cron=cron, timezone=config.timezone)
        except ValueError as error:
            reason = " ".join(str(error).split("\n")[1:3]) or str(error)
            raise ValueError(f"{config.path}: schedules.{library} = {cron!r} with timezone "
                             f"{config.timezone!r}: {reason}") from None
    return schedules


def file_signature(path: Path) -> tuple[int, int] | None:
    """What tells an edited file from the one read before (None: no file)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


class StoreServer:
    """The runner plus the deployments it holds, by library, and the config they follow."""

    def __init__(self, store: Store, config: ServeConfig, limit: int | None,
                 say: Callable[[str], None]) -> None:
        self.store, self.config, self.say = store, config, say
        self.root = str(store.root.resolve())
        self.schedules = check_schedules(config)
        # The file to read again: `--config PATH`, else the store's mfs.toml (which may
        # appear, change or go away while serving).
        self.config_file = config.path or store.root / CONFIG_NAME
        self.config_seen = file_signature(self.config_file)
        self.runner = Runner(name="mfs-serve", limit=limit)
        self.libraries: set[str] = set()

    async def add(self, flow: Flow, name: str, schedule: CronSchedule | None = None,
                  **parameters: object) -> None:
        # No schedule clears one an earlier mfs.toml (or an earlier `mfs serve`) gave it;
        # Prefect 3.9 keeps it unless told to clear.
        with temporary_settings({PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY: True}):
            await self.runner.aadd_flow(flow, name=name,
                                        schedules=[schedule] if schedule else [],
                                        parameters={**parameters, "store": self.root})
        when = f"on cron {schedule.cron!r} ({schedule.timezone})" if schedule else "on demand"
        self.say(f"deployment {flow.name}/{name}: {when}")

    async def add_library(self, library: str) -> None:
        await self.add(extract_library, library, self.schedules.get(library),
                       library=library, **self.config.defaults)
        await self.add(export_training_table, library, library=library)
        self.libraries.add(library)

    async def add_new_libraries(self) -> None:
        for library in sorted(set(self.store.libraries()) - self.libraries):
            await self.add_library(library)

    async def add_backfills(self) -> None:
        options = {key: value for key, value in self.config.defaults.items()
                   if key != "extractors"}
        for name in sorted(registry.all_extractors()):
            await self.add(backfill_model, name, extractor=name, **options)

    async def reload_config(self) -> None:
        """Apply the config file if it changed since the last look; a broken edit is one
        line, and the deployments keep the schedules and defaults read before."""
        seen = file_signature(self.config_file)
        if seen == self.config_seen:
            return
        explicit = self.config_file != self.store.root / CONFIG_NAME
        try:
            config = read_config(self.store.root, self.config_file if explicit else None)
            schedules = check_schedules(config)
        except ValueError as error:
            self.config_seen = seen  # said once, not every round until it is fixed
            self.say(f"{error}; keeping the schedules and defaults read before")
            return
        self.say(f"{self.config_file}: changed, applying it")
        self.config, self.schedules = config, schedules
        for library in sorted(self.libraries):
            await self.add_library(library)
        await self.add_backfills()
        self.config_seen = seen  # only now: an API error retries the whole edit next round

    async def watch(self, every_s: float) -> None:
        """Every `every_s`: apply an edited config, and add the deployments of libraries
        scanned since the last look."""
        while True:
            await anyio.sleep(every_s)
            try:
                await self.reload_config()
                await self.add_new_libraries()
            except Exception as error:  # the API may be restarting: try again next round
                self.say(f"could not update the deployments yet: {error}")

    async def serve(self, watch_s: float) -> None:
        created = ensure_gpu_limit()
        self.say(f"concurrency limit {GPU_LIMIT!r}: "
                 + ("created with 1 slot" if created else "exists"))
        await self.add_new_libraries()
        await self.add_backfills()
        for library in sorted(set(self.config.schedules) - self.libraries):
            self.say(f"schedule for {library!r} waits until the library is scanned")
        async with anyio.create_task_group() as group:
            group.start_soon(self.watch, watch_s)
            self.say(f"serving store {self.root} on {PREFECT_API_URL.value()}; "
                     "stop with Ctrl-C")
            await self.runner.start()
            group.cancel_scope.cancel()


def serve_store(store: Store, config: ServeConfig, limit: int | None = 1,
                watch_s: float = 10.0, say: Callable[[str], None] = print) -> None:
    """Serve the store's deployments until stopped (SIGTERM or Ctrl-C)."""
    require_api_url()
    if not store.root.is_dir():
        raise ValueError(f"store {store.root} does not exist: scan a library into it first "
                         "(mfs scan PATH --kind KIND --name NAME --store ...)")
    server = StoreServer(store, config, limit, say)
    anyio.run(server.serve, watch_s)


__all__ = ["require_api_url", "serve_store"]
