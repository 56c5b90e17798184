"""Finding damaged Parquet files in a store, so one bad file cannot take every command down.

Atomic writes keep a killed writer from leaving half a file, but not a failing disk, a copy
cut short or a stray editor. Views and readers therefore check each file's Parquet footer
first (`footer_problem`, cached per process by size and mtime, so a second connection costs
one `stat` per file) and leave out what fails, saying so in one line. A footer cannot vouch
for the pages behind it: `data_problem` reads them all (`mfs doctor --deep`), and
`explain_error` turns the error a query meets on such a file into one line naming it.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mfs.store.text import squeeze

TABLE_FOLDERS = ("tracks", "failures", "runs", "leaderboard", "predictions")
# Tables kept per extractor and config: `<table>/<extractor>/<config_hash>/part-….parquet`.
OUTPUT_FOLDERS = ("features", "windows")
QUARANTINE = "quarantine"

log = logging.getLogger("mfs.store")

# (size, mtime_ns) → (problem or None, row count from the footer or None), by path.
_footers: dict[str, tuple[tuple[int, int], str | None, int | None]] = {}
_warned: set[str] = set()  # damaged files this process has already warned about


class DamagedStoreFile(RuntimeError):
    """A store file a command needs cannot be read; the message names it and the fix."""


@dataclass(frozen=True)
class Damage:
    """One damaged store file: where, what is wrong, and its row count if the footer says."""

    path: Path
    rel: str  # relative to the store root, POSIX separators
    problem: str
    rows: int | None = None


def store_files(root: Path) -> list[Path]:
    """Every Parquet file of the store's tables (what the views read), sorted."""
    files = [p for folder in TABLE_FOLDERS for p in (root / folder).glob("*.parquet")]
    for folder in OUTPUT_FOLDERS:
        files += (root / folder).glob("*/*/*.parquet")
    return sorted(files)


def footer_problem(path: Path) -> str | None:
    """What is wrong with `path`'s Parquet footer (one line), or None if it reads."""
    return _footer(path)[0]


def footer_rows(path: Path) -> int | None:
    """The row count `path`'s footer records, or None when the footer cannot be read."""
    return _footer(path)[1]


def _footer(path: Path) -> tuple[str | None, int | None]:
    try:
        st = path.stat()
    except OSError as error:
        return f"cannot be read ({error.strerror or error})", None
    key = (st.st_size, st.st_mtime_ns)
    cached = _footers.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    problem, rows = None, None
    if st.st_size == 0:
        problem = "empty file (0 bytes)"
    else:
        try:
            rows = pq.read_metadata(path).num_rows
        except (OSError, pa.ArrowException) as error:
            problem = _footer_words(str(error), st.st_size)
    _footers[str(path)] = (key, problem, rows)
    return problem, rows


def _footer_words(error: str, size: int) -> str:
    """pyarrow's footer errors in the words a user needs."""
    if "magic bytes not found" in error or "smaller than the minimum" in error:
        return f"no Parquet footer in its {size} bytes: cut short, or not a Parquet file"
    return f"unreadable Parquet footer: {' '.join(error.split())[:200]}"


def data_problem(path: Path) -> str | None:
    """`footer_problem`, then every page read and decompressed: what a footer cannot show."""
    if problem := footer_problem(path):
        return problem
    try:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            parquet.read_row_group(group)
    except (OSError, pa.ArrowException) as error:
        return pages_problem(error)
    return None


def pages_problem(error: BaseException) -> str:
    """What is wrong with a file whose footer reads but whose pages do not."""
    return f"damaged data pages: {squeeze(error, 200)}"


def split_damaged(root: Path, files: Iterable[Path], deep: bool = False
                  ) -> tuple[list[Path], list[Damage]]:
    """`files` (all under `root`) split into the readable ones and the damaged ones."""
    check = data_problem if deep else footer_problem
    healthy: list[Path] = []
    damaged: list[Damage] = []
    for path in files:
        problem = check(path)
        if problem is None:
            healthy.append(path)
        else:
            damaged.append(Damage(path, path.relative_to(root).as_posix(), problem,
                                  footer_rows(path)))
    return healthy, damaged


def damaged_files(root: Path, deep: bool = False) -> list[Damage]:
    """Every damaged Parquet file of the store at `root`."""
    return split_damaged(root, store_files(root), deep)[1]


def repair_command(root: Path, deep: bool = False) -> str:
    return mfs_command(root, "repair", *(["--deep"] if deep else []))


def mfs_command(root: Path, *args: str) -> str:
    """The `mfs` command line a user types for this store (`--store` unless the default)."""
    from mfs.store.store import default_store_root

    store = [] if Path(root) == default_store_root() else ["--store", str(root)]
    return " ".join(shlex.quote(a) for a in ["mfs", *args, *store])


def damage_note(root: Path) -> str | None:
    """One line for `mfs status`: how many store files are damaged and what to run."""
    damaged = damaged_files(root)
    if not damaged:
        return None
    return (f"{len(damaged)} damaged store file(s) left out of every query: "
            f"`{mfs_command(root, 'doctor')}` lists them, `{repair_command(root)}` moves "
            "them aside")


def warn_left_out(root: Path, damaged: list[Damage]) -> None:
    """Say once per process, in one line on stderr, which damaged files the views skip."""
    key = {str(d.path) for d in damaged}
    if key <= _warned:  # every one named (or counted) in an earlier warning
        return
    _warned.update(key)
    first = damaged[0]
    more = f" and {len(damaged) - 1} more" if len(damaged) > 1 else ""
    log.warning(f"warning: damaged store file {first.path} ({first.problem}){more} left out "
                f"of the views: `{mfs_command(root, 'doctor')}` lists them, "
                f"`{repair_command(root)}` moves them aside")


def damaged_message(path: Path, root: Path, problem: str, deep: bool = False) -> str:
    """The one-line error for a store file a command needed."""
    return (f"store file {path} is damaged ({problem}): run `{repair_command(root, deep)}` "
            "to move it aside into the store's quarantine folder (nothing is deleted)")


# DuckDB names the file for most damage; for a bad page header (Thrift) it does not.
_NAMED_FILE = re.compile(r"""["']([^"']+\.parquet)["']""")
_UNNAMED_DAMAGE = re.compile(
    r"don't know what type|TProtocolException|Variable-length int|Out of buffer|invalid TType"
    r"|Decompression failure|page header|Corrupt", re.IGNORECASE)


def explain_error(message: str) -> str | None:
    """One line for a query error caused by a damaged store file, else None.

    Store files are recognised by the layout (`<store>/runs/part-….parquet`,
    `<store>/features/<extractor>/<config>/…`, `windows/` alike), so this needs no store
    root.
    """
    text = " ".join(message.split())
    found = _NAMED_FILE.search(text)
    if found:
        path = Path(found[1])
        root = _store_root_of(path)
        if root is not None:
            head, tail = text[:found.start()], text[found.end():].split(" LINE ")[0]
            reason = tail.strip(" :.") or head.split("Error: ")[-1].strip()
            return damaged_message(path, root, reason, deep=True)
        return None
    if _UNNAMED_DAMAGE.search(text):
        return (f"a store file's data pages are damaged (DuckDB: {text[:160]}): run "
                "`mfs doctor --deep` to find it and `mfs repair --deep` to move it aside")
    return None


def holdings(damage: Damage) -> str:
    """What a damaged file held, from its place in the layout and its footer if readable."""
    table, *rest = damage.rel.split("/")
    rows = "row count unknown" if damage.rows is None else f"{damage.rows} rows"
    written = _written(rest[-1])
    if table == "features":
        return f"{rest[0]} features, config {rest[1]}: {rows}, one per track; {written}"
    if table == "windows":
        return f"{rest[0]} windows, config {rest[1]}: {rows}, one per window; {written}"
    if table == "tracks":
        return f"the tracks of library {Path(rest[0]).stem!r} ({rows})"
    what = {"runs": "run records", "failures": "failure records",
            "leaderboard": "benchmark entries of one `mfs bench` command",
            "predictions": "test predictions of one `mfs bench` command's entries"}[table]
    return f"{what} ({rows}); {written}"


def _written(part_name: str) -> str:
    """`part-<utc time>-<id>.parquet` → when the part was written."""
    found = re.match(r"part-(\d{8})T(\d{2})(\d{2})(\d{2})", part_name)
    if not found:
        return "written at an unknown time"
    day = found[1]
    return f"written {day[:4]}-{day[4:6]}-{day[6:]} {found[2]}:{found[3]}:{found[4]} UTC"


def _store_root_of(path: Path) -> Path | None:
    parents = path.parents
    if len(parents) >= 2 and parents[0].name in TABLE_FOLDERS:
        return parents[1]
    if len(parents) >= 4 and parents[2].name in OUTPUT_FOLDERS:
        return parents[3]
    return None


