"""What every `mfs` command shares: the store and format options, one-line errors, and the
command class that renders their help."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from mfs.console import print_error
from mfs.store.health import explain_error

FORMATS = ("table", "csv", "json")

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store root (default: $MFS_STORE or data/store).",
                 show_default=False),
]


def _check_format(value: str) -> str:
    """Refuse an unknown --format before the command runs (it may run for minutes), in one
    line: Typer's own usage error is a boxed panel."""
    if value not in FORMATS:
        print_error(f"--format {value!r} is not one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    return value


FormatOption = Annotated[str, typer.Option(
    "--format", "-f", metavar=f"<{'|'.join(FORMATS)}>", callback=_check_format,
    help="Print a table, CSV or JSON.")]


class _FlagsWithoutType:
    """Help shows no value type beside flags: Typer prints `<bool>` beside each flag
    (--help too), which reads as if the flag took a value."""

    def get_params(self, ctx: typer.Context) -> list:
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class Command(_FlagsWithoutType, TyperCommand):
    """An `mfs` command (see `_FlagsWithoutType`)."""


class Group(_FlagsWithoutType, TyperGroup):
    """The `mfs` command group (see `_FlagsWithoutType`)."""


ExtractorOption = Annotated[
    list[str] | None,
    typer.Option("--extractor", "-e", show_default=False,
                 help="Extractor spec (see `mfs extractors`); repeat it or give a comma list."),
]

DaskWorkersOption = Annotated[int, typer.Option(
    "--dask-workers", help="Spread batches over a local Dask cluster of N worker processes.")]
DaskAddressOption = Annotated[str | None, typer.Option(
    "--dask-address", help="Spread batches over the Dask cluster at tcp://HOST:PORT (needs "
    "PREFECT_API_URL).", show_default=False)]


def dask_parameters(workers: int, address: str | None) -> dict:
    """`--dask-workers` / `--dask-address` checked, as the flows' parameters of the same
    names (empty: one process)."""
    from mfs.flows.settings import check_cluster

    check_cluster(address, workers)
    if address:
        from mfs.flows.spread import require_server

        require_server(address)
    return {"dask_address": address, "dask_workers": workers} if address or workers else {}


_debug = False


def set_debug(enabled: bool) -> None:
    """`mfs --debug`: let errors raise with their full traceback instead of one line."""
    global _debug
    _debug = enabled


def debug_enabled() -> bool:
    return _debug


def one_line_errors(command: Callable) -> Callable:
    """Turn expected failures into `error: …` on stderr and exit code 1 (unless --debug)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise  # a RuntimeError to click, but a chosen exit code, not a failure
        except Exception as error:
            if _debug:
                raise
            # A query that meets a damaged store file fails inside DuckDB, wherever it ran.
            message = explain_error(str(error))
            if message is None:
                if not isinstance(error, OSError | ValueError | KeyError | RuntimeError):
                    raise
                message = _one_line(error, kwargs.get("store"))
            print_error(message)
            raise typer.Exit(1) from None

    return wrapper


def _one_line(error: Exception, store: Path | None) -> str:
    if _is_disk_full(error):
        from mfs.store import Store

        return (f"no space left on the device of store {Store(store).root.resolve()} "
                f"({error}); free some space and run again: what was stored is kept")
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    return " ".join(str(message).split())


def _is_disk_full(error: Exception) -> bool:
    """ENOSPC from Python's own I/O, or from Arrow's writer (which keeps only the text)."""
    return isinstance(error, OSError) and (
        error.errno == errno.ENOSPC or "No space left on device" in str(error))
