"""What every `mfs` command shares: the store and format options and one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from mfs.console import errors
from mfs.store.health import explain_error

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store root (default: $MFS_STORE or data/store).",
                 show_default=False),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="table, csv or json")]


def one_line_errors(command: Callable) -> Callable:
    """Turn expected failures into `error: …` on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise  # a RuntimeError to click, but a chosen exit code, not a failure
        except Exception as error:
            # A query that meets a damaged store file fails inside DuckDB, wherever it ran.
            message = explain_error(str(error))
            if message is None:
                if not isinstance(error, OSError | ValueError | KeyError | RuntimeError):
                    raise
                message = error.args[0] if isinstance(error, KeyError) and error.args else error
            errors.print(f"[red]error:[/red] {message}", highlight=False, markup=True,
                         soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
