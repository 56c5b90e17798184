"""Terminal output shared by the CLI commands: tables, progress bars, one-line errors."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# Piped output is not cut to 80 columns: wide benchmark tables stay one row per entry.
# No markup: every line interpolates user data (library, file and feature names, paths,
# SQL results) that must print literally; `Song [remix].mp3` keeps its brackets.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200, markup=False)
errors = Console(stderr=True)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence], fmt: str = "table",
               title: str | None = None) -> None:
    """Print query results as a rich table, CSV or JSON lines."""
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=_jsonable,
                         indent=1))
    else:
        # Cells, headers and titles are user data (file names like `Song [remix].mp3`):
        # as Text they print literally instead of being read as rich markup.
        table = Table(title=None if title is None else Text(title), show_lines=False)
        for column in columns:
            table.add_column(Text(str(column)), overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(v)) for v in row))
        console.print(table)


def print_error(message: str) -> None:
    """`error: <message>` on stderr, printed literally (file names may hold `[...]`)."""
    errors.print(Text.assemble(("error:", "red"), f" {message}"), soft_wrap=True)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        shown = ", ".join(_cell(v) for v in value[:4])
        return f"[{shown}, … ({len(value)} values)]" if len(value) > 4 else f"[{shown}]"
    return str(value)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@contextmanager
def counting_progress(label: str) -> Iterator:
    """A spinner that counts items of unknown total (scans), on stderr; on a terminal only,
    so piped stderr holds nothing but errors. Yields the per-item callback, or None."""
    if not errors.is_terminal:
        yield None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}", markup=False),
               TextColumn("{task.completed} files"), TimeElapsedColumn()]
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda _item: progress.advance(task)


@contextmanager
def bar_progress(label: str, total: int, enabled: bool = True) -> Iterator:
    """A bar with tracks/s and ETA for work of known size; yields `update(done, elapsed)`."""
    if not enabled:
        yield lambda done, elapsed: None
        return
    columns = [TextColumn("{task.description}", markup=False), BarColumn(),
               TextColumn("{task.completed}/{task.total} tracks"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TextColumn("ETA {task.fields[eta]}")]
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task(label, total=total, rate="", eta="?")

        def update(done: int, elapsed: float) -> None:
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f"{(total - done) / rate:.0f}s" if rate > 0 else "?"
            progress.update(task, completed=done, rate=f"{rate:.2f} tracks/s", eta=eta)

        yield update
