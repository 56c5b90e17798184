"""Reading and writing the store's tables (layout in `store/SCHEMA.md`).

Reads need nothing; every write goes through a `StoreWriter`, which exists only while the
store's single-writer lock is held. Feature, failure and run tables are append-only sets
of immutable Parquet parts; a library's tracks are one file replaced atomically per scan.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mfs.store import health, schema
from mfs.store.atomic import remove_stale_temporaries, write_bytes_atomic, write_parquet_atomic
from mfs.store.lock import StoreLock, read_holder
from mfs.store.views import create_failure_views, create_views

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_store_root() -> Path:
    """`$MFS_STORE` if set, else `data/store` under the current directory."""
    return Path(os.environ.get("MFS_STORE", "data/store"))


def check_name(kind: str, name: str) -> str:
    """Library and extractor names become folder names, so they must be plain."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def new_part_name() -> str:
    """Unique, time-ordered file name for one append-only part."""
    return f"part-{part_stamp(datetime.now(UTC))}-{uuid.uuid4().hex[:8]}.parquet"


def batch_part_name(run_stamp: str, run_id: str, extractor: str, config_hash: str,
                    batch: int, chunk: int) -> str:
    """The name of chunk `chunk` of batch `batch` of one run's extractor config: the same
    in `features/`, `windows/` and `failures/`, and the same whichever process (or Dask
    worker) writes it, so a batch re-run after its worker died finds what it already
    stored (`batch_part_prefix`) and an overwrite replaces a part instead of adding one.
    `run_stamp` is the run's start (UTC), so names still sort by time."""
    return f"{batch_part_prefix(run_stamp, run_id, extractor, config_hash, batch)}" \
           f"-c{chunk:03d}.parquet"


def batch_part_prefix(run_stamp: str, run_id: str, extractor: str, config_hash: str,
                      batch: int) -> str:
    return f"part-{run_stamp}-{run_id[:12]}-{extractor}-{config_hash}-b{batch:05d}"


def part_stamp(moment: datetime) -> str:
    """`moment` as part names write it."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")


class Store:
    """A store root on disk. Cheap to create; touches nothing until asked."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_root()

    @property
    def tracks_dir(self) -> Path:
        return self.root / "tracks"

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    @property
    def windows_dir(self) -> Path:
        return self.root / "windows"

    @property
    def failures_dir(self) -> Path:
        return self.root / "failures"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def leaderboard_dir(self) -> Path:
        return self.root / "leaderboard"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    @property
    def prompts_dir(self) -> Path:
        return self.root / "prompts"

    def libraries(self) -> list[str]:
        return sorted(p.stem for p in self.tracks_dir.glob("*.parquet"))

    def require_library(self, library: str) -> None:
        """Raise a KeyError naming the known libraries unless `library` has tracks here."""
        if library not in self.libraries():
            raise self._unknown_library(library)

    def _unknown_library(self, library: str) -> KeyError:
        known = ", ".join(self.libraries()) or "none yet"
        return KeyError(f"unknown library {library!r} in store {self.root} (known: {known}); "
                        f"scan it first: mfs scan PATH --kind KIND --name {library}")

    def extractors(self) -> list[str]:
        if not self.features_dir.is_dir():
            return []
        return sorted(p.name for p in self.features_dir.iterdir() if any(p.rglob("*.parquet")))

    @property
    def libraries_dir(self) -> Path:
        return self.root / "libraries"

    def library_config(self, library: str) -> dict:
        """How a library was scanned (kind, root, metadata and split folders)."""
        path = self.libraries_dir / f"{check_name('library', library)}.json"
        if not path.exists():
            raise self._unknown_library(library)
        return json.loads(path.read_text())

    def read_tracks(self, library: str) -> pa.Table:
        """A library's tracks table, or an empty one if it was never scanned."""
        path = self.tracks_dir / f"{check_name('library', library)}.parquet"
        if not path.exists():
            return schema.TRACKS.empty_table()
        problem, deep = health.footer_problem(path), False
        if problem is None:
            try:
                return _with_new_columns(pq.read_table(path), schema.TRACKS)
            except (OSError, pa.ArrowException) as error:
                problem, deep = health.pages_problem(error), True
        # Read as empty, the next scan would replace the file: the damage must be seen.
        rescan = health.mfs_command(self.root, "scan", "--name", library)
        message = health.damaged_message(path, self.root, problem, deep)
        raise health.DamagedStoreFile(f"{message}, then rescan the library: `{rescan}`")

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the store's views (see SCHEMA.md)."""
        con = duckdb.connect()
        create_views(con, self)
        return con

    def connect_failures(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with only `failures` and `failures_latest`."""
        con = duckdb.connect()
        create_failure_views(con, self)
        return con

    @contextmanager
    def writing(self, purpose: str) -> Iterator[StoreWriter]:
        """Hold the single-writer lock for the duration of the block."""
        with StoreLock(self.root, purpose):
            remove_stale_temporaries(self.root)
            yield StoreWriter(self)


class StoreWriter:
    """Write access to a store; only handed out while its lock is held.

    One exception, by design: a run that holds the lock may hand its Dask workers a
    writer (`flows/spread.py`) that only adds new feature, window and failure parts under
    the run's deterministic batch names; such a writer checks before each part that the
    lock's holder is still its run (`owner`), and never takes the lock itself.
    """

    def __init__(self, store: Store, owner: dict | None = None) -> None:
        self.store = store
        self.owner = owner  # (worker writers) the lock holder's pid and host

    def check_owner(self) -> None:
        """(Worker writers) raise unless the store's lock is still held by the run that
        handed this writer out: a worker of a dead run must not add parts under the next
        run's lock, which planned without them."""
        if self.owner is None:
            return
        holder = read_holder(self.store.root)
        if (holder.get("pid"), holder.get("host")) != (self.owner["pid"], self.owner["host"]):
            raise RuntimeError(
                f"store {self.store.root} is no longer locked by the run that started this "
                f"batch (pid {self.owner['pid']} on {self.owner['host']}): part not written")

    def save_library_config(self, library: str, config: dict) -> Path:
        path = self.store.libraries_dir / f"{check_name('library', library)}.json"
        return write_bytes_atomic(json.dumps(config, indent=2).encode(), path)

    def replace_tracks(self, library: str, table: pa.Table) -> Path:
        """Atomically replace a library's tracks table; rejects duplicate track IDs."""
        table = table.cast(schema.TRACKS)
        ids = table.column("track_id")
        if len(ids) != len(pa.compute.unique(ids)):
            raise ValueError(f"library {library!r}: duplicate track_id in tracks table")
        path = self.store.tracks_dir / f"{check_name('library', library)}.parquet"
        return write_parquet_atomic(table, path)

    def append_failures(self, rows: list[dict], name: str | None = None) -> Path | None:
        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=schema.FAILURES)
        self.check_owner()
        return write_parquet_atomic(table, self.store.failures_dir / (name or new_part_name()))

    def append_run(self, row: dict) -> Path:
        table = pa.Table.from_pylist([row], schema=schema.RUNS)
        return write_parquet_atomic(table, self.store.runs_dir / new_part_name())

    def append_leaderboard(self, table: pa.Table) -> Path:
        """Add one benchmark command's entries as an immutable leaderboard part."""
        table = table.cast(schema.LEADERBOARD)
        return write_parquet_atomic(table, self.store.leaderboard_dir / new_part_name())

    def append_predictions(self, table: pa.Table) -> Path:
        """Add one benchmark command's test predictions as an immutable part."""
        table = table.cast(schema.PREDICTIONS)
        return write_parquet_atomic(table, self.store.predictions_dir / new_part_name())

    def append_prompts(self, extractor: str, config_hash: str, table: pa.Table) -> Path:
        """Add text-prompt embeddings of one extractor config as an immutable part of
        `prompts/<ext>/<hash>/`."""
        table = table.cast(schema.PROMPTS)
        folder = self.store.prompts_dir / check_name("extractor", extractor) / config_hash
        return write_parquet_atomic(table, folder / new_part_name())

    def append_features(self, extractor: str, config_hash: str, table: pa.Table,
                        name: str | None = None) -> Path:
        """Add one batch of feature rows as an immutable part of `features/<ext>/<hash>/`."""
        missing = set(schema.FEATURE_KEY_AND_PROVENANCE.names) - set(table.column_names)
        if missing:
            raise ValueError(f"feature batch for {extractor!r} lacks columns {sorted(missing)}")
        folder = self.store.features_dir / check_name("extractor", extractor) / config_hash
        self.check_owner()
        return write_parquet_atomic(table, folder / (name or new_part_name()))

    def append_windows(self, extractor: str, config_hash: str, table: pa.Table,
                       name: str | None = None) -> Path:
        """Add one batch of window rows as an immutable part of `windows/<ext>/<hash>/`.
        Written before the feature part of the same tracks: a run killed between the two
        leaves windows that no feature row pairs with, which the `_windows` view leaves
        out and the planner redoes, never a feature row without its windows."""
        missing = set(schema.WINDOW_KEY_AND_PROVENANCE.names) - set(table.column_names)
        if missing:
            raise ValueError(f"window batch for {extractor!r} lacks columns {sorted(missing)}")
        folder = self.store.windows_dir / check_name("extractor", extractor) / config_hash
        self.check_owner()
        return write_parquet_atomic(table, folder / (name or new_part_name()))

def _with_new_columns(table: pa.Table, table_schema: pa.Schema) -> pa.Table:
    """`table` cast to `table_schema`, columns added since it was written read as null
    (`tracks.genre_levels`: a library scanned before it existed, until its next scan)."""
    for field in table_schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(table_schema.names).cast(table_schema)
