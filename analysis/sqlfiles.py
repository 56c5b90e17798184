"""The analysis SQL lives in `analysis/sql/*.sql`; this loads it.

Values always travel as DuckDB parameters (`$name`); only identifiers (view and column
names, already validated against the store) are formatted into the text, quoted by
`mfs.store.sql.ident`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def sql_text(name: str) -> str:
    """The text of `analysis/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()

