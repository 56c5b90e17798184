"""The `mfs` command line: scan libraries, inspect the store, query it with SQL, run the demo.

Every failure is one line on stderr naming what is at fault, with a non-zero exit code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mfs.analysis_commands import register as register_analysis_commands
from mfs.cli_options import (
    Command,
    DaskAddressOption,
    DaskWorkersOption,
    ExtractorOption,
    FormatOption,
    Group,
    StoreOption,
    dask_parameters,
    debug_enabled,
    one_line_errors,
    set_debug,
)
from mfs.console import bar_progress, console, counting_progress, print_rows
from mfs.libraries.registry import KINDS as LIBRARY_KINDS
from mfs.store import Store
from mfs.store_commands import register as register_store_commands

if TYPE_CHECKING:
    from mfs.flows.settings import ExtractSettings

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True,
                  help="Music feature store: scan libraries, extract features, query with SQL.")


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show errors with their full traceback (and Prefect's).")] = False,
) -> None:
    """Music feature store: scan libraries, extract features, query with SQL."""
    set_debug(debug)


@app.command("scan")
@one_line_errors
def scan_command(
    path: Annotated[Path | None, typer.Argument(help="Library folder; omit to rescan.")] = None,
    kind: Annotated[str | None, typer.Option(
        help=f"Library kind: {', '.join(LIBRARY_KINDS)}.")] = None,
    name: Annotated[str, typer.Option(help="Library name in the store.")] = ...,
    metadata: Annotated[Path | None, typer.Option(help="FMA: folder with tracks.csv.")] = None,
    split_dir: Annotated[Path | None, typer.Option(help="GTZAN: folder with split lists.")] = None,
    store: StoreOption = None,
) -> None:
    """Scan a library into the store's tracks table (incremental).

    Example: mfs scan ~/Music --kind folder --name mine
    """
    from mfs.flows.scan import run_scan

    with counting_progress(f"scanning {name}") as tick:
        summary = run_scan(Store(store), name, kind, path, metadata, split_dir, tick)
    console.print(
        f"scanned {name}: {summary['tracks']} tracks "
        f"({summary['new']} new, {summary['changed']} changed, {summary['unchanged']} unchanged, "
        f"{summary['missing']} missing, {summary['unreadable']} unreadable, "
        f"{summary['duplicate']} duplicates, {summary['problems']} other problems)"
    )


@app.command("status")
@one_line_errors
def status_command(
    store: StoreOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Tracks per library and status, coverage per extractor (with each config), runs
    (running, interrupted and recent), recent failures, and whether any store file is
    damaged.

    JSON is one object with the sections as lists; CSV prints each section as its own CSV
    table after a `# section` line.

    Example: mfs status --format json
    """
    from mfs.extractors.registry import current_config_hash
    from mfs.store.status import store_status

    status = store_status(Store(store), current_hash=current_config_hash)
    if fmt == "json":
        print(json.dumps(status, default=str, indent=1))
        return
    if fmt == "table":
        console.print(f"store: {status['store']}")
        for note in ("damaged", "stale"):
            if status[note]:
                console.print(status[note])
    for section, title in (("tracks", "Tracks"), ("coverage", "Extractor coverage"),
                           ("runs", "Runs"), ("recent_failures", "Recent failures")):
        rows = status[section]
        if fmt == "csv":
            print(f"# {section}")
        if rows:
            print_rows(list(rows[0]), [list(r.values()) for r in rows], fmt, title=title)
        elif fmt == "table":
            console.print(f"{title}: none")


@app.command("sql")
@one_line_errors
def sql_command(
    query: Annotated[str, typer.Argument(help="SQL over the views tracks, failures, "
                                             "failures_latest, runs, leaderboard, features "
                                             "and one view per extractor.")],
    store: StoreOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Read the store with SQL on its DuckDB views (see store/SCHEMA.md).

    Only reading statements run: SELECT, WITH, FROM, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN.
    Anything that writes (COPY, EXPORT, INSERT, CREATE, ATTACH, INSTALL, LOAD, SET, CALL) is
    refused, in the store and outside it alike, and only the store's files can be read:
    print CSV with --format csv, or write a training table with mfs export.

    Example: mfs sql "SELECT genre, count(*) FROM tracks GROUP BY genre" --format csv
    """
    from mfs.read_only_sql import run_read_only

    columns, rows = run_read_only(Store(store), query, lambda result: (
        list(result.columns), result.fetchall()))
    print_rows(columns, rows, fmt)


@app.command("extractors")
@one_line_errors
def extractors_command(fmt: FormatOption = "table") -> None:
    """List the extractors with their outputs and whether they can run on this machine.

    Example: mfs extractors --format json
    """
    from mfs.extractors import registry

    rows = []
    for name in sorted(registry.all_extractors()):
        extractor = registry.create(name)
        outputs = ", ".join(f"{o.name}[{o.dim}]" + (f"x{o.layers} layers" if o.layers else "")
                            for o in extractor.outputs)
        reason = extractor.unavailable_reason()
        where = extractor.model_location()
        available = f"no: {reason}" if reason else f"yes ({where})" if where else "yes"
        rows.append([name, outputs, extractor.sample_rate or "native", available,
                     extractor.config_hash()])
    columns = ["extractor", "outputs (dims)", "sample rate", "available", "config_hash"]
    print_rows(columns, rows, fmt)
    if fmt == "table":  # not a row: its rate and outputs are the module's own, once loaded
        console.print(f"and {registry.HEAR_NAMES}: --extractor hear:MODULE[:weights=FILE]",
                      markup=False, highlight=False)


@app.command("extract")
@one_line_errors
def extract_command(
    library: Annotated[str, typer.Argument(help="Library name (as given to `mfs scan --name`).")],
    extractor: ExtractorOption = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Windows per model call (default: each extractor's own; 16, vggish 64).",
        show_default=False)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, mps")] = "auto",
    rescan: Annotated[bool, typer.Option(help="Rescan the library first.")] = True,
    tracks_per_part: Annotated[int, typer.Option(
        help="Tracks per batch task (what one Dask worker takes) and per stored part.")] = 64,
    dask_workers: DaskWorkersOption = 0,
    dask_address: DaskAddressOption = None,
    store: StoreOption = None,
) -> None:
    """Extract what the library is missing (Prefect flow extract-library; default
    extractors fma518,musicnn-mtt).

    Example: mfs extract gtzan --extractor fma518 --extractor musicnn-msd --dask-workers 4
    """
    from mfs.flows.prepare import DEFAULT_EXTRACTORS
    from mfs.flows.settings import ExtractSettings

    if tracks_per_part < 1:
        raise ValueError("--tracks-per-part must be at least 1")
    cluster = dask_parameters(dask_workers, dask_address)
    specs = extractor_specs(extractor or list(DEFAULT_EXTRACTORS))
    run_extraction("extract-library", Store(store), library, specs,
                   ExtractSettings(batch_size, device, tracks_per_part), rescan, cluster)


@app.command("backfill")
@one_line_errors
def backfill_command(
    library: Annotated[str | None, typer.Argument(
        help="Only this library (default: every library).", show_default=False)] = None,
    extractor: ExtractorOption = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Windows per model call (default: each extractor's own; 16, vggish 64).",
        show_default=False)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, mps")] = "auto",
    tracks_per_part: Annotated[int, typer.Option(
        help="Tracks per batch task (what one Dask worker takes) and per stored part.")] = 64,
    dask_workers: DaskWorkersOption = 0,
    dask_address: DaskAddressOption = None,
    store: StoreOption = None,
) -> None:
    """Run extractors over every known track (Prefect flow backfill-model).

    Example: mfs backfill --extractor musicnn-msd --dask-workers 4
    """
    from mfs.flows.settings import ExtractSettings

    if not extractor:
        raise ValueError("backfill needs --extractor NAME (see `mfs extractors`)")
    if tracks_per_part < 1:
        raise ValueError("--tracks-per-part must be at least 1")
    cluster = dask_parameters(dask_workers, dask_address)
    run_extraction("backfill-model", Store(store), library, extractor_specs(extractor),
                   ExtractSettings(batch_size, device, tracks_per_part), False, cluster)


def extractor_specs(values: list[str]) -> list[str]:
    """`--extractor a,b --extractor c` → ["a", "b", "c"]."""
    from mfs.analysis.selection import split_specs

    return [spec for value in values for spec in split_specs(value)]


def run_extraction(flow_name: str, store: Store, library: str | None, specs: list[str],
                   settings: ExtractSettings, rescan: bool, cluster: dict) -> None:
    """Check and plan first (no Prefect); start Prefect's flow only when work is missing.

    `cluster` (`dask_parameters`) runs the batches on a Dask cluster (`flows/spread.py`).

    The flow plans again itself (a deployment calls it directly), which costs one
    anti-join; it does not rescan again.
    """
    from mfs.flows.prepare import check_device, prepare_extract

    prepared = prepare_extract(store, library, specs, rescan, settings.max_attempts)
    if not prepared.missing:
        print_extract_summary(prepared.nothing_done())
        return
    check_device(list(prepared.extractors.values()), settings.device)
    from mfs.flows import extract as flows
    from mfs.flows.prefect_server import quiet_console, start_temporary_server

    specs = list(prepared.extractors)
    options = {"batch_size": settings.batch_size, "device": settings.device,
               "store": str(store.root), "tracks_per_part": settings.tracks_per_part,
               **cluster}
    with quiet_console(enabled=not debug_enabled()), flows.displayed(bar_progress):
        start_temporary_server()
        if flow_name == "extract-library":
            result = flows.extract_library(library, specs, rescan=False, **options)
        else:
            result = flows.backfill_model(specs, library, **options)
    print_extract_summary(result)


def print_extract_summary(result: dict) -> None:
    for name, counts in result["extractors"].items():
        console.print(
            f"{name}: {counts['ok']} extracted, {counts['failed']} failed, "
            f"{counts['skipped']} skipped after repeated failures"
            + (f" in {counts['seconds']:.1f} s" if "seconds" in counts else " (nothing missing)"),
            markup=False, highlight=False,
        )


@app.command("serve")
@one_line_errors
def serve_command(
    store: StoreOption = None,
    config: Annotated[Path | None, typer.Option(
        help="Schedules and default parameters (default: <store>/mfs.toml if it exists).",
        show_default=False)] = None,
    limit: Annotated[int, typer.Option(
        help="Flow runs at once; more wait their turn (the store has one writer).")] = 1,
    watch_seconds: Annotated[float, typer.Option(
        help="How often to look for newly scanned libraries and an edited config.")] = 10.0,
) -> None:
    """Serve the store's Prefect deployments until stopped: extract-library/<library>
    (on its cron from mfs.toml), backfill-model/<extractor> and
    export-training-table/<library>. Needs PREFECT_API_URL; creates the concurrency limit
    `gpu` if missing. A library scanned later gets its deployments, and an edited
    config is applied, without a restart.

    Example: mfs serve --config mfs.toml   (then: prefect deployment run 'extract-library/gtzan')
    """
    from mfs.flows.serve import require_api_url

    require_api_url()  # one line before the store is even looked at
    from mfs.flows.serve import serve_store
    from mfs.flows.serve_config import read_config

    the_store = Store(store)
    settings = read_config(the_store.root, config)
    try:
        serve_store(the_store, settings, limit if limit > 0 else None, watch_seconds,
                    say=lambda line: console.print(line, markup=False, highlight=False))
    except KeyboardInterrupt:
        console.print("stopped")


@app.command("demo")
@one_line_errors
def demo_command(
    store: StoreOption = None,
    folder: Annotated[Path, typer.Option(help="Where the demo library is written.")] = Path(
        "data/demo"),
) -> None:
    """Run the whole job on a synthetic demo library.

    Builds the library, scans it, extracts features, benchmarks them, and prints the
    leaderboard and where the HTML report is.

    Example: mfs demo --store /tmp/demo-store --folder /tmp/demo
    """
    from mfs.analysis_commands import bench_command, leaderboard_command, report_command
    from mfs.demo import DEMO_EXTRACTORS, run_demo
    from mfs.flows.prefect_server import start_temporary_server

    start_temporary_server()  # the demo always runs the flow; its server dies with us
    run_demo(Store(store), folder)
    status_command(store=store, fmt="table")
    bench_command("demo", features=",".join([*DEMO_EXTRACTORS, "+".join(DEMO_EXTRACTORS)]),
                  model="logreg,xgboost", ensemble="both", store=store)
    leaderboard_command(library="demo", fmt="table", store=store)
    report_command("demo", out=folder.parent / "demo-report", store=store)


register_analysis_commands(app)
register_store_commands(app)
for _info in app.registered_commands:  # one help style for every command (see Command)
    _info.cls = Command


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app()
