"""Quoting for the SQL the store and analysis build: the one place names enter SQL text.

Values travel as DuckDB parameters (`$name` / `?`) wherever DuckDB takes them. What cannot
be a parameter goes through here: identifiers (view and column names) through `ident`,
and strings in view definitions (file paths, which may hold any character, and
column names shown as values) through `literal`.
"""

from __future__ import annotations


def literal(text: str) -> str:
    """A single-quoted SQL string literal: `it's` → `'it''s'`."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A double-quoted SQL identifier (view or column name): `a"b` → `"a""b"`."""
    return '"' + name.replace('"', '""') + '"'
