"""Splits known to leak: said in one line on screen and in the leaderboard row's `leak`.

GTZAN holds several clips of one artist, some repeated or distorted outright (Sturm 2013),
so a random split puts the same artist, even the same recording, on both sides and
inflates accuracy by several points. Its fault-filtered split (the default of a GTZAN
scan, `libraries/gtzan.py`) and an artist split do not; a k-fold split, or split lists a
user gave at scan time (not known to be artist-filtered), do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfs.store import Store

if TYPE_CHECKING:
    import duckdb


def known_leak(store: Store, con: duckdb.DuckDBPyConnection, library: str,
               split: str) -> str | None:
    """One line saying why `split` (resolved) on `library` leaks, or None when it is not
    known to."""
    kinds = con.execute("SELECT DISTINCT library_kind FROM tracks WHERE library = $library",
                        {"library": library}).fetchall()
    if ("gtzan",) not in kinds:
        return None
    if split == "kfold":
        return (f"leaks: a random k-fold split of GTZAN library {library!r} puts one artist's "
                "clips (some repeated) on both sides; use --split official (fault-filtered) "
                "or --split artist")
    lists = _user_split_dir(store, library)
    if split == "official" and lists:
        return (f"may leak: GTZAN library {library!r} was scanned with split lists from "
                f"{lists}, not known to be artist-filtered (rescan without --split-dir for "
                "the fault-filtered split)")
    return None


def _user_split_dir(store: Store, library: str) -> str | None:
    """The split folder given at scan time, if any (libraries built in memory have no
    config: they used no lists)."""
    try:
        config = store.library_config(library)
    except KeyError:
        return None
    return config.get("split_dir")
