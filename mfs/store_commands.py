"""Store upkeep commands of the `mfs` CLI: `doctor` finds damaged store files, `repair`
moves them into the store's quarantine folder and says what the next runs will redo.
`register(app)` adds them to the main Typer app; the checks are in `mfs.store.health`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mfs.cli_options import FormatOption, StoreOption, one_line_errors
from mfs.console import console, print_rows
from mfs.store import Store
from mfs.store.health import Damage, damaged_files, holdings, mfs_command, repair_command
from mfs.store.sql import ident
from mfs.store.views import view_name

if TYPE_CHECKING:
    import duckdb

DeepOption = Annotated[bool, typer.Option(
    "--deep", help="Read every data page too, not only each file's footer (slower).")]
SHOWN_TRACKS = 5

MISSING_FEATURES = """
SELECT library, list(track_id ORDER BY track_id) FROM tracks t
WHERE status = 'ok' AND ($ids IS NULL OR list_contains($ids, track_id)) {not_stored}
GROUP BY library ORDER BY library
"""
NOT_STORED = """AND NOT EXISTS (SELECT 1 FROM {view} s
                    WHERE s.track_id = t.track_id AND s.config_hash = $config_hash)"""


def register(app: typer.Typer) -> None:
    """Add `doctor` and `repair` to `app`, each turning user errors into one line."""
    app.command("doctor")(one_line_errors(doctor_command))
    app.command("repair")(one_line_errors(repair_store_command))


def doctor_command(
    deep: DeepOption = False,
    fmt: FormatOption = "table",
    store: StoreOption = None,
) -> None:
    """List damaged store files: path, what is wrong, what they held. Exit code 1 if any."""
    root = Store(store).root
    damaged = damaged_files(root, deep)
    if not damaged:
        checked = "every page read" if deep else "footers checked; --deep reads every page"
        console.print(f"store {root}: no damaged files ({checked})")
        return
    rows = [[d.rel, d.problem, holdings(d)] for d in damaged]
    print_rows(["file", "problem", "held"], rows, fmt)
    if fmt == "table":
        console.print(f"{len(damaged)} damaged file(s) in {root}: "
                      f"`{repair_command(root, deep)}` moves them into its quarantine folder")
    raise typer.Exit(1)


def repair_store_command(deep: DeepOption = False, store: StoreOption = None) -> None:
    """Move damaged store files into `<store>/quarantine/` (never deleting) and say what the
    next `mfs extract` or `mfs scan` redoes."""
    from mfs.store.quarantine import quarantine

    target = Store(store)
    with target.writing("repair") as writer:
        damaged = damaged_files(target.root, deep)
        if not damaged:
            console.print(f"store {target.root}: no damaged files, nothing moved")
            return
        track_ids = {d.rel: _part_track_ids(d.path) for d in damaged}
        for damage, moved_to in quarantine(writer, damaged):
            console.print(f"moved {damage.rel} → {moved_to.relative_to(target.root)} "
                          f"({damage.problem}; held {holdings(damage)})")
        for line in _consequences(target, damaged, track_ids):
            console.print(line)


def _part_track_ids(path: Path) -> list[str] | None:
    """A damaged feature part's track IDs when that column can still be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "features" not in path.parts:
        return None
    try:
        return pq.read_table(path, columns=["track_id"]).column("track_id").to_pylist()
    except (OSError, pa.ArrowException):
        return None


def _consequences(store: Store, damaged: list[Damage],
                  track_ids: dict[str, list[str] | None]) -> list[str]:
    """What each moved file means for the next runs, one line each."""
    lines = []
    parts: dict[tuple[str, str], list[list[str] | None]] = defaultdict(list)
    for damage in damaged:
        table, *rest = damage.rel.split("/")
        if table == "features":
            parts[(rest[0], rest[1])].append(track_ids[damage.rel])
        elif table == "tracks":
            library = Path(rest[0]).stem
            lines.append(f"library {library!r} has no tracks table now: rescan it with "
                         f"`{_rescan_command(store, library)}` (its stored features join its "
                         "tracks again after the rescan)")
        elif table == "windows":
            lines.append(f"{damage.rel}: those window rows are gone from "
                         f"`{view_name(rest[0])}_windows`; the next `mfs extract` of config "
                         f"{rest[1]} (keep_windows=true) redoes their tracks")
        elif table == "runs":
            lines.append(f"{damage.rel}: that run's record is gone from `runs` (history only; "
                         "nothing is redone)")
        elif table == "failures":
            lines.append(f"{damage.rel}: those failure records are gone, so their tracks' "
                         "retry counts restart and the next scan or extract tries them again")
        elif table == "predictions":
            lines.append(f"{damage.rel}: those entries' predictions are gone, so `mfs "
                         "compare` refuses them; rerun their `mfs bench` command")
        else:
            lines.append(f"{damage.rel}: those leaderboard entries are gone; rerun that "
                         "`mfs bench` command to get them back")
    if parts:
        with store.connect() as con:  # one for every moved part: each builds every view
            for (extractor, config_hash), found in sorted(parts.items()):
                ids = None if None in found else [tid for part in found for tid in part]
                lines += _missing_features(store, con, extractor, config_hash, ids)
    return lines


def _rescan_command(store: Store, library: str) -> str:
    """`mfs scan --name <library>` rescans as last time, if the library's config is here."""
    if (store.libraries_dir / f"{library}.json").exists():
        return mfs_command(store.root, "scan", "--name", library)
    return mfs_command(store.root, "scan", "FOLDER", "--kind", "KIND", "--name", library)


def _missing_features(store: Store, con: duckdb.DuckDBPyConnection, extractor: str,
                      config_hash: str, ids: list[str] | None) -> list[str]:
    """Per library, the tracks that lack this extractor config now: the planner's todo."""
    not_stored, params = "", {"ids": ids}
    if extractor in store.extractors():  # else no part is left: every track lacks them
        not_stored = NOT_STORED.format(view=ident(view_name(extractor)))
        params["config_hash"] = config_hash
    found = con.execute(MISSING_FEATURES.format(not_stored=not_stored), params).fetchall()
    spec = _registered_spec(extractor, config_hash)
    lines = []
    for library, missing in found:
        shown = ", ".join(missing[:SHOWN_TRACKS]) + (", …" if len(missing) > SHOWN_TRACKS else "")
        how = (f"`{mfs_command(store.root, 'extract', library, '--extractor', spec)}` "
               "re-extracts them" if spec else
               "re-create them as they were made (`mfs extract` with that config, or "
               "`mfs import-features`)")
        lines.append(f"{len(missing)} track(s) of library {library!r} lack {extractor} "
                     f"features (config {config_hash}); {how}: {shown}")
    if not lines:
        lines.append(f"{extractor} (config {config_hash}): no track in the tracks table "
                     "lacks these features now (other parts hold them, or a library is yet "
                     "to be rescanned)")
    return lines


def _registered_spec(extractor: str, config_hash: str) -> str | None:
    """The `--extractor` value that recreates `config_hash`, if it is the default config of
    a registered extractor (imported features and custom configs have none)."""
    from mfs.extractors import registry

    try:
        made = registry.create(extractor)
    except Exception:  # noqa: BLE001 - unknown or unloadable: no command to suggest
        return None
    return extractor if made.config_hash() == config_hash else None
