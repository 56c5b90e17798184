"""Read-only SQL over the store, for `mfs sql` and the Python API's `sql` (`mfs.api`).

`mfs sql` runs without the store's writer lock (readers never lock), so it must never
write: a `COPY … TO` into `tracks/` empties a library, one with `OVERWRITE` over
`features/` deletes every stored part. Two guards, because each alone has a gap:

- only reading statements run (DuckDB's own parser says which): SELECT, WITH, FROM,
  DESCRIBE, SUMMARIZE, SHOW, VALUES and EXPLAIN of those;
- the connection reads files under the store root only and its configuration is locked,
  so nothing can be copied, attached, installed or loaded anywhere else either (the store
  root itself must stay reachable: the views read its Parquet files at query time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import duckdb

from mfs.store import Store

READING = frozenset({duckdb.StatementType.SELECT})
# EXPLAIN ANALYZE runs the statement it explains, so that statement is checked as well.
_EXPLAIN = re.compile(r"\bexplain\s*(?:analy[sz]e\b|\([^)]*\))?", re.IGNORECASE)
T = TypeVar("T")
HINT = ("mfs sql only reads the store (write tables with mfs export, or print them with "
        "--format csv)")


def read_only_statements(query: str) -> list[duckdb.Statement]:
    """The statements of `query`, or a one-line ValueError if it is empty, does not parse,
    or holds anything but reading statements."""
    statements = _parse(query)
    if not statements:
        raise ValueError('SQL query is empty; e.g. mfs sql "SELECT count(*) FROM tracks"')
    for statement in statements:
        _check_reading(statement)
    return statements


def run_read_only(store: Store, query: str, fetch: Callable[[duckdb.DuckDBPyRelation], T]
                  ) -> T:
    """Check `query`, run its statements on a read-only connection and return what `fetch`
    takes from the last one's result (rows, an Arrow table); DuckDB errors as one line."""
    statements = read_only_statements(query)
    con = connect_read_only(store)
    try:
        for statement in statements[:-1]:
            con.execute(statement)
            con.abort()  # only the last statement's rows are returned
        # A relation, not an execute() result: DuckDB hands a relation to Arrow without
        # the extra copy it makes (and warns about) for a DB-API result.
        return fetch(con.sql(statements[-1]))
    except duckdb.Error as error:
        raise sql_error(error) from None
    finally:
        con.close()


def connect_read_only(store: Store) -> duckdb.DuckDBPyConnection:
    """The store's views on a connection that can read the store's files and nothing else,
    with its configuration locked so no statement can widen that."""
    con = store.connect()
    root = str(store.root.resolve())
    con.execute("SET allowed_directories = $dirs", {"dirs": [root.rstrip("/") + "/"]})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def sql_error(error: duckdb.Error) -> ValueError:
    """DuckDB's (often multi-line) message as one line; a file outside the store is refused
    by the connection's configuration, which the message then says."""
    message = " ".join(str(error).split())
    if isinstance(error, duckdb.PermissionException):
        message += " (mfs sql reads only the store's files)"
    return ValueError(f"SQL failed: {message}")


def _parse(query: str) -> list[duckdb.Statement]:
    try:
        return duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise sql_error(error) from None


def _check_reading(statement: duckdb.Statement) -> None:
    if statement.type == duckdb.StatementType.EXPLAIN:
        explain = _EXPLAIN.search(statement.query)
        try:
            inner = _parse(statement.query[explain.end():]) if explain else []
        except ValueError:
            inner = []
        if len(inner) == 1 and inner[0].type in READING:
            return
        raise ValueError(f"EXPLAIN of anything but a SELECT is refused: {HINT}")
    if statement.type not in READING:
        raise ValueError(f"{statement.type.name} statements are refused: {HINT}")
