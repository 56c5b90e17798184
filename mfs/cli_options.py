"""What every `mfs` command shares: the store and format options and one-line errors."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from mfs.console import errors

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store root (default: $MFS_STORE or data/store).",
                 show_default=False),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="table, csv or json")]
ExtractorOption = Annotated[
    list[str] | None,
    typer.Option("--extractor", "-e", show_default=False,
                 help="Extractor spec (see `mfs extractors`); repeat it or give a comma list."),
]

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
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            if _debug:
                raise
            print_error(_one_line(error, kwargs.get("store")))
            raise typer.Exit(1) from None

    return wrapper


def print_error(message: str) -> None:
    """`error: message` on stderr; the message literally (brackets are not rich markup)."""
    errors.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


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
