"""Analysis commands of the `mfs` CLI: stats, export, import-features, bench, leaderboard,
compare, report. `register(app)` adds them to the main Typer app; the work is in `mfs.analysis`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mfs.cli_options import FormatOption, StoreOption, one_line_errors
from mfs.console import console, print_rows
from mfs.store import Store

SeedOption = Annotated[int, typer.Option(help="Seed for folds, models and bootstrap.")]
FoldsOption = Annotated[int, typer.Option(help="Folds for --split kfold/artist.")]
SplitOption = Annotated[str, typer.Option(
    help="auto (dataset split if present, else kfold), official, kfold or artist.")]
# The population: label and filters, applied before any split in the order of the options.
LabelOption = Annotated[str, typer.Option(
    help="genre_top (the tracks' genre), or levelN: the track's one genre at level N of "
         "the genre tree (FMA's genres.csv; level1 = top level).")]
SubsetOption = Annotated[str | None, typer.Option(
    help="1) FMA subset small, medium or large, cumulative as FMA defines it (medium "
         "holds small).", show_default=False)]
GenresOption = Annotated[str | None, typer.Option(
    help="2) Only these labels, e.g. Rock,Hip-Hop.", show_default=False)]
ExcludeOption = Annotated[str | None, typer.Option(
    help="2) Not these labels, e.g. International.", show_default=False)]
WhereOption = Annotated[str | None, typer.Option(
    help=escape("3) One DuckDB condition on the tracks' columns, e.g. "
                "\"duration_s > 20 AND artist_id <> '42'\" (read-only; no subqueries)."),
    show_default=False)]
MinPerGenreOption = Annotated[int | None, typer.Option(
    help="4) Last: keep genres with at least N tracks, counted on what the other filters "
         "leave that has a label and every feature, over all splits.", show_default=False)]


def register(app: typer.Typer) -> None:
    """Add the analysis commands to `app`, each turning user errors into one line."""
    for name, command in (("stats", stats_command), ("export", export_command),
                          ("import-features", import_command), ("bench", bench_command),
                          ("leaderboard", leaderboard_command), ("compare", compare_command),
                          ("report", report_command)):
        app.command(name)(one_line_errors(command))


def stats_command(
    extractor: Annotated[str, typer.Argument(
        help=escape("extractor[@config_hash][:column]"))],  # help is rich markup
    by: Annotated[str | None, typer.Option(help="Group by genre, split, library or artist.")
                  ] = None,
    library: Annotated[str | None, typer.Option(help="Only this library's tracks.")] = None,
    dims: Annotated[bool, typer.Option("--dims", help="Print every dimension.")] = False,
    fmt: FormatOption = "table",
    store: StoreOption = None,
) -> None:
    """Per-dimension statistics of an extractor: mean, std, range, NaN/inf, dead dims.

    Example: mfs stats musicnn-mtt:tags_mean --by genre --format csv
    """
    from mfs.analysis.stats import feature_stats, summarise

    stats = feature_stats(Store(store), extractor, library, by)
    if dims:
        _print_frame(stats, fmt)
        return
    summary = summarise(stats)
    if fmt == "table":
        title = f"{stats['extractor'].iloc[0]}@{stats['config_hash'].iloc[0]}"
        summary = summary.drop(columns=["extractor", "config_hash"])
        if by is None:
            summary = summary.drop(columns=["group"])
    _print_frame(summary, fmt, title=title if fmt == "table" else None)
    # Grouped, a dimension is judged per group (the table's dead_dims); this line is for
    # the whole selection, which only the ungrouped statistics describe.
    dead = stats.loc[stats["dead"], "feature"].tolist() if by is None else []
    if fmt == "table" and dead:
        shown = ", ".join(dead[:10]) + (f", … ({len(dead)} in all)" if len(dead) > 10 else "")
        console.print(f"dead dimensions (constant or never finite): {shown}")


def export_command(
    library: Annotated[str, typer.Argument(help="Library to export.")],
    features: Annotated[str, typer.Option(help="Selections joined, e.g. a,b:tags_mean,c:layer=7")],
    out: Annotated[Path, typer.Option(help="Output file: .parquet, .csv or .npz.")],
    split: SplitOption = "auto",
    folds: FoldsOption = 5,
    seed: SeedOption = 0,
    label: LabelOption = "genre_top",
    subset: SubsetOption = None,
    genres: GenresOption = None,
    exclude_genres: ExcludeOption = None,
    where: WhereOption = None,
    min_per_genre: MinPerGenreOption = None,
    store: StoreOption = None,
) -> None:
    """Write a training table (features, genre, genres, split, artist) for use outside the
    store; the population options are those of mfs bench.

    Example: mfs export fma --features fma518 --subset medium --exclude-genres International
    --out train.parquet
    """
    from mfs.analysis.export import export
    from mfs.analysis.selection import split_specs

    population = _population(label, subset, genres, exclude_genres, where, min_per_genre)
    summary = export(Store(store), library, split_specs(features), split, out, folds, seed,
                     population)
    console.print(f"exported {summary.rows} tracks × {summary.feature_columns} features "
                  f"(split: {summary.split}) to {summary.path}; {_dropped_line(summary.dropped)}")
    if population.filtered or population.label != "genre_top":
        console.print(population_line(summary.population), highlight=False, soft_wrap=True)


def import_command(
    files: Annotated[list[Path], typer.Argument(
        help="CSV/Parquet tables (FMA's features.csv too) or .npz windows.")],
    name: Annotated[str, typer.Option(help="Extractor name to store the features under.")],
    library: Annotated[str, typer.Option(help="Library whose tracks the ids refer to.")],
    id_column: Annotated[str | None, typer.Option(help="Id column or .npz key.")] = None,
    output: Annotated[str, typer.Option(help="Output column name.")] = "features",
    pooling: Annotated[str, typer.Option(help=".npz: statistics over windows.")] = "mean,max",
    exclude: Annotated[str, typer.Option(help="Table columns to leave out.")] = "",
    store: StoreOption = None,
) -> None:
    """Import an external feature table or per-window .npz as its own extractor.

    Example: mfs import-features features_30_sec.csv --name kaggle58 --library gtzan
    """
    from mfs.analysis.importing import import_features
    from mfs.analysis.selection import split_specs

    summary = import_features(Store(store), files, name, library, id_column, output,
                              tuple(split_specs(pooling)), tuple(split_specs(exclude)))
    columns = ", ".join(f"{c} ({d} dims)" for c, d in summary.columns.items())
    console.print(f"imported {summary.written} tracks into {name}@{summary.config_hash}: "
                  f"{columns}, from {len(summary.files)} file(s); "
                  f"{summary.already_stored} already stored, {summary.unmatched} rows "
                  "matched no track"
                  + (f" (e.g. {', '.join(summary.unmatched_examples)})"
                     if summary.unmatched else ""))
    if summary.skipped_columns:
        console.print(f"skipped non-numeric columns: {', '.join(summary.skipped_columns)}")


def bench_command(
    library: Annotated[str, typer.Argument(help="Library to benchmark on.")],
    features: Annotated[str, typer.Option(
        help="Feature sets separated by ',', selections in a set joined by '+'; "
             "x:layer=4-12 or x:layer=all is one set per layer.")],
    model: Annotated[str, typer.Option(
        help="xgboost, logreg, svm, mlp, probe (MARBLE's: 512 hidden, dropout 0.2, Adam, "
             "early-stopped; torch, GPU if present) or zero-shot; several separated by ','.")
                 ] = "xgboost",
    ensemble: Annotated[str, typer.Option(
        help="How a+b is combined: concat, vote, or both.")] = "concat",
    prune: Annotated[float | None, typer.Option(help="Drop one of each |r| > this pair.")
                     ] = None,
    pca: Annotated[float | None, typer.Option(help="PCA components (≥1) or variance (<1).")
                   ] = None,
    split: SplitOption = "auto",
    folds: FoldsOption = 5,
    seed: SeedOption = 0,
    seeds: Annotated[int, typer.Option(
        help="Train N times (seeds seed…seed+N-1, new k-fold shuffles each) and report "
             "accuracy mean ± std beside the first seed's CI.")] = 1,
    prompts: Annotated[str | None, typer.Option(
        help="zero-shot: prompt template with {genre} (default: "
             "'This audio is a {genre} song.').")] = None,
    class_weight: Annotated[str | None, typer.Option(
        help="balanced: weigh training tracks by 1/(genre frequency), every trained model "
             "(XGBoost and MLP through sample weights).", show_default=False)] = None,
    tune: Annotated[bool, typer.Option(
        "--tune", help="Choose each model's settings from a small grid (see "
        "analysis/tuning.py) on the validation part, else on 3 inner folds of train; "
        "then refit (train+validation) and score the test part once.")] = False,
    label: LabelOption = "genre_top",
    subset: SubsetOption = None,
    genres: GenresOption = None,
    exclude_genres: ExcludeOption = None,
    where: WhereOption = None,
    min_per_genre: MinPerGenreOption = None,
    save: Annotated[bool, typer.Option(help="Append the results to the leaderboard.")] = True,
    store: StoreOption = None,
) -> None:
    """Benchmark genre classification; every entry is scored on the same tracks.

    Filters run before any split, in the order 1) to 4) of their help.

    Example: mfs bench gtzan --features fma518,musicnn-mtt,fma518+musicnn-mtt --ensemble both

    Example: mfs bench fma --features fma518 --subset medium --exclude-genres International
    --min-per-genre 1000 --class-weight balanced

    Example: mfs bench gtzan --features musicnn-msd:features_max --model svm,probe --tune
    """
    from mfs.analysis.benchmark import bench_configs, run_benchmarks
    from mfs.analysis.leaderboard import interval_text, spread_text
    from mfs.analysis.metrics import METRICS
    from mfs.analysis.selection import split_specs

    population = _population(label, subset, genres, exclude_genres, where, min_per_genre)
    the_store = Store(store)
    configs = bench_configs(library, split_specs(features), split_specs(model), ensemble,
                            prune, pca, split, folds, seed, prompts, population, class_weight,
                            seeds, the_store, tune)
    results = run_benchmarks(the_store, configs, save=save)
    repeated = seeds > 1
    rows = [[r.config.feature_set, r.config.model + (" (tuned)" if r.config.tune else ""),
             r.split, f"{r.n_train}/{r.n_test}",
             f"{r.n_features_in}→{r.n_features_used}",
             *(interval_text(r.scores[m], *r.intervals[m]) for m in METRICS),
             *([spread_text(*r.seed_spread("accuracy"), r.config.seeds)] if repeated else []),
             round(r.duration_s, 1)] for r in results]
    print_rows(["features", "model", "split", "train/test", "dims", "accuracy",
                "balanced acc.", "macro-F1", *(["accuracy over seeds"] if repeated else []),
                "seconds"], rows, title=f"{library} (95% CI)")
    for leak in dict.fromkeys(r.leak for r in results if r.leak):
        console.print(f"warning: {leak}", style="yellow", highlight=False, soft_wrap=True)
    console.print(f"tracks: {_dropped_line(results[0].dropped)}"
                  + ("; saved to the leaderboard" if save else ""), highlight=False)
    if population.filtered or population.label != "genre_top":
        console.print(population_line(results[0].population), highlight=False,
                      soft_wrap=True)


def leaderboard_command(
    library: Annotated[str | None, typer.Option(help="Only this library.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Also repeated runs of a command.")
                     ] = False,
    fmt: FormatOption = "table",
    store: StoreOption = None,
) -> None:
    """Stored benchmark results, best first (newest row per command unless --all).

    Example: mfs leaderboard --library gtzan --format csv
    """
    from mfs.analysis.leaderboard import (
        optional_number,
        read_leaderboard,
        row_interval,
        spread_text,
    )
    from mfs.analysis.metrics import METRICS

    board = read_leaderboard(Store(store), library, latest=not every)
    if board.empty and fmt == "table":
        console.print("leaderboard: no results yet (run mfs bench)")
        return
    board = board.sort_values(["library", "accuracy"], ascending=[True, False])
    if fmt != "table":
        _print_frame(board, fmt)
        return
    rows = [[number, r.row_id[:8] if isinstance(r.row_id, str) else "", r.library,
             r.feature_set, r.model + (" (tuned)" if _tuned(r) else ""),
             r.split + (" (leaks)" if isinstance(r.leak, str) else ""), r.seed,
             optional_number(r.prune), optional_number(r.pca), f"{r.n_train}/{r.n_test}",
             *(row_interval(r, m) for m in METRICS),
             spread_text(r.accuracy_seed_mean, r.accuracy_seed_std, r.seeds)]
            for number, r in enumerate(board.itertuples(index=False), start=1)]
    print_rows(["#", "id", "library", "features", "model", "split", "seed", "prune", "pca",
                "train/test", "accuracy", "balanced acc.", "macro-F1", "accuracy over seeds"],
               rows, title="Leaderboard (95% CI)")
    for number, command in enumerate(board["command"], start=1):
        console.print(f"{number}: {command}", highlight=False, soft_wrap=True)


def compare_command(
    row_a: Annotated[str, typer.Argument(help="Leaderboard row id (or a prefix of it), or a "
                                              "feature set (its newest row).")],
    row_b: Annotated[str, typer.Argument(help="The row to compare it with, named the same way.")],
    library: Annotated[str | None, typer.Option(help="Only this library's rows.")] = None,
    fmt: FormatOption = "table",
    store: StoreOption = None,
) -> None:
    """Paired test of two leaderboard rows on the same test tracks: McNemar exact test and a
    paired bootstrap CI of the accuracy difference, and whether it is more than noise.
    Rows run with --seeds N are compared over their seeds (paired in order, tracks
    resampled and sign-tested with each track's seed-averaged result).

    Example: mfs compare 3f2a9c1e 7b0d4e22   (ids from mfs leaderboard)
    """
    from dataclasses import asdict

    from mfs.analysis.compare import compare_rows

    result = compare_rows(Store(store), row_a, row_b, library)
    if fmt != "table":
        record = asdict(result) | {"difference": result.difference,
                                   "distinguishable": result.distinguishable}
        print_rows(list(record), [list(record.values())], fmt)
        return
    console.print(f"A = {result.a[:8]} {result.name_a}: {100 * result.accuracy_a:.1f}%; "
                  f"B = {result.b[:8]} {result.name_b}: {100 * result.accuracy_b:.1f}% "
                  f"(pooled over the same {result.n_tracks} test tracks"
                  f"{f', {result.n_seeds} paired seeds' if result.n_seeds > 1 else ''})",
                  highlight=False,
                  soft_wrap=True)
    console.print(result.verdict(), highlight=False, soft_wrap=True)


def report_command(
    library: Annotated[str, typer.Argument(help="Library to report on.")],
    out: Annotated[Path, typer.Option(help="Folder for index.html and its figures.")],
    store: StoreOption = None,
) -> None:
    """Write an HTML report: leaderboard, confusion matrices, importance, statistics.

    Example: mfs report gtzan --out report/
    """
    from mfs.analysis.report import write_report

    page = write_report(Store(store), library, out)
    console.print(f"report written to {page}")


def _tuned(row) -> bool:
    """Whether a leaderboard row's settings were chosen by `--tune`."""
    import json

    return bool(json.loads(row.config).get("tune"))


def _population(label: str, subset: str | None, genres: str | None,
                exclude_genres: str | None, where: str | None,
                min_per_genre: int | None):
    from mfs.analysis.population import Population, parse_genres

    return Population(label, subset, parse_genres(genres), parse_genres(exclude_genres),
                      where, min_per_genre)


def population_line(population: dict) -> str:
    """`population: 3 genres (Rock 120, Pop 80, Folk 40); dropped: International
    (--exclude-genres International (40 tracks))`."""
    kept = ", ".join(f"{g} {c['tracks']}" for g, c in population["tracks_per_genre"].items())
    gone = "; ".join(f"{g} ({why})" for g, why in population["genres_dropped"].items())
    return (f"population ({population['label']}): {len(population['tracks_per_genre'])} "
            f"genres ({kept})" + (f"; genres dropped: {gone}" if gone else ""))


def _dropped_line(dropped: dict) -> str:
    reasons = ", ".join(f"{k}: {v}" for k, v in dropped.items()
                        if k not in ("library_tracks", "kept", "dropped") and v)
    return (f"kept {dropped['kept']} of {dropped['library_tracks']} library tracks"
            + (f" ({reasons})" if reasons else ""))


def _print_frame(frame, fmt: str, title: str | None = None) -> None:
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    print_rows(list(frame.columns), rows, fmt, title=title)
