"""`mfs.toml`: what `mfs serve` schedules, and the parameters its deployments default to.

```toml
timezone = "Europe/Berlin"        # optional: the crons' timezone (default UTC)

[schedules]                       # library = cron; a library not listed runs only on demand
gtzan = "0 2 * * *"
fma-small = "30 2 * * 6"

[defaults]                        # optional: parameters every deployment run starts from
extractors = ["fma518", "musicnn-mtt"]
batch_size = 16
device = "auto"
dask_workers = 4                  # or dask_address = "tcp://HOST:8786": batches over Dask
```

Read from `--config PATH`, else `<store>/mfs.toml` when it exists, else nothing is
scheduled. No Prefect import: a mistake is one line before anything starts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mfs.flows.settings import check_cluster
from mfs.store.store import check_name

CONFIG_NAME = "mfs.toml"
DEFAULT_KEYS = {"extractors": list, "batch_size": int, "device": str, "dask_address": str,
                "dask_workers": int}


@dataclass(frozen=True)
class ServeConfig:
    schedules: dict[str, str] = field(default_factory=dict)  # library -> cron
    timezone: str = "UTC"
    defaults: dict = field(default_factory=dict)  # DEFAULT_KEYS
    path: Path | None = None


def read_config(store_root: Path, path: Path | None = None) -> ServeConfig:
    """The config at `path` (must exist), else `<store_root>/mfs.toml` if present."""
    if path is None:
        path = store_root / CONFIG_NAME
        if not path.exists():
            return ServeConfig()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    unknown = set(data) - {"timezone", "schedules", "defaults"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} (known: timezone, "
                         f"[schedules], [defaults])")
    return ServeConfig(_schedules(path, data.get("schedules", {})),
                       _string(path, "timezone", data.get("timezone", "UTC")),
                       _defaults(path, data.get("defaults", {})), path)


def _schedules(path: Path, table: object) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [schedules] must be a table of library = \"cron\"")
    for library, cron in table.items():
        check_name("library", library)
        _string(path, f"schedules.{library}", cron)
        if len(cron.split()) not in (5, 6):
            raise ValueError(f"{path}: schedules.{library} = {cron!r} is not a cron "
                             f"expression (five fields, e.g. \"0 2 * * *\" for 02:00 daily)")
    return dict(table)


def _defaults(path: Path, table: object) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [defaults] must be a table")
    for key, value in table.items():
        kind = DEFAULT_KEYS.get(key)
        if kind is None:
            raise ValueError(f"{path}: defaults.{key} is not one of {', '.join(DEFAULT_KEYS)}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path}: defaults.{key} must be a {kind.__name__}")
    try:
        check_cluster(table.get("dask_address"), table.get("dask_workers", 0))
    except ValueError as error:
        raise ValueError(f"{path}: [defaults] {error}") from None
    return dict(table)


def _string(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{path}: {key} must be a string")
    return value
