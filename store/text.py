"""Error text as the one line a failure reason, a run record or a warning shows.

Messages from decoders, Arrow and DuckDB often span lines; the store keeps reasons on one
line so tables, `mfs status` and CSV exports stay one row per failure.
"""

from __future__ import annotations


def squeeze(error: BaseException, limit: int | None = None) -> str:
    """`error`'s message with every run of whitespace (newlines too) made one space, cut
    to `limit` characters when given."""
    text = " ".join(str(error).split())
    return text if limit is None else text[:limit]
