"""A self-contained HTML report of a library: a summary chart of every entry's score and
interval, accuracy against layer for layer sweeps, paired comparisons of the best entries,
the leaderboard, confusion matrices and feature importance (each entry collapsed in its own
<details>, so the page stays short), per-extractor statistics, and the command and versions
behind every number.

Leaderboard rows come from the store (newest row per distinct command, since a command
reproduces its numbers); statistics are computed fresh. Figures are PNGs beside the page.
"""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mfs.analysis.compare import compare_loaded
from mfs.analysis.leaderboard import (
    optional_number,
    read_leaderboard,
    row_interval,
    spread_text,
)
from mfs.analysis.plots import confusion_png, importance_png, layers_png, scores_png
from mfs.analysis.selection import parse_spec, stored_configs
from mfs.analysis.stats import feature_stats, summarise
from mfs.store import Store
from mfs.store.atomic import write_bytes_atomic
from mfs.store.provenance import library_versions

if TYPE_CHECKING:
    import duckdb

MAX_ENTRIES = 30
COMPARED = 4  # the best entry is compared with the next COMPARED - 1
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1150px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #eef; } td.text, th.text { text-align: left; }
code, pre { background: #f5f5f5; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
.entry { border-top: 2px solid #99b; margin-top: 2em; padding-top: 0.5em; }
.figures img { max-width: 540px; vertical-align: top; margin-right: 1em; }
img.wide { max-width: 100%; }
.side { display: flex; gap: 0.5em; overflow-x: auto; }
.side img { max-width: 24vw; min-width: 260px; }
details > summary { cursor: pointer; font-weight: bold; margin: 0.3em 0; }
"""


def write_report(store: Store, library: str, out_dir: Path) -> Path:
    """Write `out_dir/index.html` (and `out_dir/img/*.png`); returns the page's path."""
    store.require_library(library)
    out_dir = Path(out_dir)
    con = store.connect()  # one for the page: each new one rebuilds every view
    board = read_leaderboard(store, library, latest=True, con=con).sort_values(
        ["accuracy", "feature_set"], ascending=[False, True], ignore_index=True)
    parts = [f"<h1>Genre benchmarks: {escape(library)}</h1>", _provenance(store),
             _summary(board, out_dir), _layers(board, out_dir), _comparisons(board, con)]
    entries = [_entry(row, number, out_dir) for number, row in
               enumerate(board.head(MAX_ENTRIES).itertuples(index=False), start=1)]
    parts += [_side_by_side(out_dir, len(entries)), "<h2>Leaderboard</h2>",
              _leaderboard_table(board), *entries]
    parts += ["<details><summary>Per-extractor statistics</summary>",
              _statistics(store, library, con), "</details>"]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>mfs report: "
            f"{escape(library)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    return write_bytes_atomic(page.encode(), out_dir / "index.html")


def _provenance(store: Store) -> str:
    return (f"<p>Store <code>{escape(str(store.root.resolve()))}</code>; generated "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} by <code>{escape(shlex.join(sys.argv))}"
            f"</code>; versions <code>{escape(library_versions())}</code>.</p>")


def _summary(board: pd.DataFrame, out_dir: Path) -> str:
    """Every entry's accuracy with its 95 % interval, in the board's order (best first)."""
    if board.empty:
        return ""
    names = [f"#{n} {row.feature_set} · {row.model}" for n, row in enumerate(
        board.itertuples(index=False), start=1)]
    chart = scores_png(names, board["accuracy"].to_numpy(), board["accuracy_low"].to_numpy(),
                       board["accuracy_high"].to_numpy(), out_dir / "img" / "summary.png")
    return (f"<h2>Summary</h2><img class=wide alt='accuracy of every entry with its 95% CI' "
            f"src='{chart.relative_to(out_dir)}'>")


# Entries whose confusion matrices are set side by side at the top of the page.
SIDE_BY_SIDE = 4


def _side_by_side(out_dir: Path, entries: int) -> str:
    """The best entries' normalised confusion matrices in one row (one colour scale),
    reusing the images each entry draws (`_entry`), so where each entry errs compares
    at a glance."""
    count = min(entries, SIDE_BY_SIDE)
    if count < 2:
        return ""
    images = "".join(f"<a href='#entry{n}'><img alt='confusion matrix of entry #{n}' "
                     f"src='img/confusion-{n}.png'></a>" for n in range(1, count + 1))
    return (f"<h2>Confusion matrices of the best {count}, side by side</h2>"
            f"<p>Rows: true genre, normalised to its tracks.</p><div class=side>{images}</div>")


def _layers(board: pd.DataFrame, out_dir: Path) -> str:
    """Accuracy against layer, one line per model and extractor (config and the rest of the
    selection), for entries that select one layer (`x:layer=N`); none below two layers."""
    lines: dict[str, dict[int, tuple[float, float, float]]] = {}
    for row in board.itertuples(index=False):
        if len(row.features) != 1:
            continue
        extractor, config_hash, column = parse_spec(row.features[0])
        if column is None or not column.startswith("layer=") or not column[6:].isdigit():
            continue
        name = f"{row.model} · {extractor}" + (f"@{config_hash}" if config_hash else "")
        # The board holds the newest row per command first: keep that one per layer.
        lines.setdefault(name, {}).setdefault(
            int(column[6:]), (row.accuracy, row.accuracy_low, row.accuracy_high))
    series = {name: (sorted(points), *(list(v) for v in zip(
        *(points[k] for k in sorted(points)), strict=True)))
              for name, points in lines.items() if len(points) > 1}
    if not series:
        return ""
    chart = layers_png(series, out_dir / "img" / "layers.png")
    return (f"<h2>Accuracy by layer</h2><img class=wide alt='accuracy against layer' "
            f"src='{chart.relative_to(out_dir)}'>")


def _comparisons(board: pd.DataFrame, con: duckdb.DuckDBPyConnection) -> str:
    """The best entry against the next few, paired on the same test tracks."""
    if len(board) < 2:
        return ""
    best, rows = board.iloc[0], []
    for number in range(2, min(COMPARED, len(board)) + 1):
        other = board.iloc[number - 1]
        try:
            verdict = compare_loaded(con, best, other).verdict()
        except ValueError as error:  # other tracks, or made before predictions were kept
            verdict = f"not compared: {error}"
        rows.append(f"<tr><td>#1 vs #{number}</td><td class=text>{escape(verdict)}</td></tr>")
    return ("<h2>Is the best entry better than the next?</h2><p>McNemar exact test and "
            "paired bootstrap over the same test tracks; over seeds, a sign test on each "
            "track's seed-averaged result (<code>mfs compare</code>).</p>"
            f"<table>{''.join(rows)}</table>")


def _leaderboard_table(board: pd.DataFrame) -> str:
    if board.empty:
        return "<p>No benchmark results for this library yet (run <code>mfs bench</code>).</p>"
    header = ("<tr><th>#</th><th class=text>features</th><th class=text>model</th>"
              "<th class=text>split</th><th>seed</th><th>prune</th><th>pca</th>"
              "<th>train/test</th><th>dims in→used</th><th>accuracy % [95% CI]</th>"
              "<th>balanced acc. %</th><th>macro-F1 %</th><th>accuracy over seeds</th>"
              "<th class=text>id</th></tr>")
    rows = []
    for number, row in enumerate(board.itertuples(index=False), start=1):
        link = (f"<a href='#entry{number}'>{number}</a>" if number <= MAX_ENTRIES
                else str(number))
        rows.append(
            f"<tr><td>{link}</td><td class=text>{escape(row.feature_set)}</td>"
            f"<td class=text>{escape(row.model)}</td>"
            f"<td class=text>{escape(row.split)} ({row.folds} fold{'s' * (row.folds > 1)})"
            + (f" <b title='{escape(row.leak)}'>leaks</b>" if isinstance(row.leak, str) else "")
            + f"</td><td>{row.seed}</td><td>{optional_number(row.prune)}</td>"
            f"<td>{optional_number(row.pca)}</td><td>{row.n_train}/{row.n_test}</td>"
            f"<td>{row.n_features_in}→{row.n_features_used}</td>"
            f"<td>{row_interval(row, 'accuracy')}</td>"
            f"<td>{row_interval(row, 'balanced_accuracy')}</td>"
            f"<td>{row_interval(row, 'macro_f1')}</td>"
            f"<td>{spread_text(row.accuracy_seed_mean, row.accuracy_seed_std, row.seeds)}</td>"
            f"<td class=text>{escape(row.row_id[:8] if isinstance(row.row_id, str) else '')}"
            "</td></tr>")
    return f"<table>{header}{''.join(rows)}</table>"


def _entry(row, number: int, out_dir: Path) -> str:
    title = f"#{number} {row.feature_set} · {row.model} · {row.split}"
    confusion = confusion_png([list(r) for r in row.confusion], list(row.labels), title,
                              out_dir / "img" / f"confusion-{number}.png")
    figures = [f"<img alt='confusion matrix' src='{confusion.relative_to(out_dir)}'>"]
    importance = json.loads(row.feature_importance)
    if importance:
        bars = importance_png(importance, title, out_dir / "img" / f"importance-{number}.png")
        figures.append(f"<img alt='feature importance' src='{bars.relative_to(out_dir)}'>")
    per_genre = json.loads(row.per_genre)
    genre_rows = "".join(
        f"<tr><td class=text>{escape(g)}</td><td>{v['precision']:.2f}</td>"
        f"<td>{v['recall']:.2f}</td><td>{v['f1']:.2f}</td><td>{v['support']}</td></tr>"
        for g, v in per_genre.items())
    by_selection = ", ".join(f"{escape(k)}: {100 * v:.1f}%"
                             for k, v in json.loads(row.importance_by_selection).items())
    leak = (f"<p><b>Warning:</b> {escape(row.leak)}</p>" if isinstance(row.leak, str) else "")
    return (
        f"<details class=entry id='entry{number}'><summary>{escape(title)} · "
        f"{row_interval(row, 'accuracy')}</summary>{leak}"
        f"<p>Command: <code>{escape(row.command)}</code><br>Intervals: "
        f"{escape(row.ci_method)}. Run {escape(row.run_id)} at {row.created_at}.</p>"
        + _population(getattr(row, "population", None)) +
        f"<div class=figures>{''.join(figures)}</div>"
        + (f"<p>Gain by selection: {by_selection}</p>" if by_selection else "")
        + "<table><tr><th class=text>genre</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>support</th></tr>{genre_rows}</table>"
        f"<details><summary>configuration, features, dropped tracks, versions</summary>"
        f"<pre>{escape(json.dumps(json.loads(row.config), indent=1))}\n"
        f"{escape(row.selections)}\nmodel: {escape(row.model_params)}\n"
        f"dropped: {escape(row.dropped)}\nversions: {escape(row.versions)}</pre></details>"
        "</details>")


def _population(text: str | None) -> str:
    """Which tracks the entry used: label, filters, tracks left after each step, genres
    dropped and why, tracks per genre and split (entries made before populations were
    recorded have none)."""
    if not isinstance(text, str) or not text:
        return ""
    population = json.loads(text)
    filters = ", ".join(f"{k}={v}" for k, v in population["filters"].items()) or "none"
    steps = "".join(
        f"<tr><td class=text>{escape(step['step'])}</td><td>{step['dropped']}</td>"
        f"<td>{step['left']}</td></tr>" for step in population["steps"])
    per_genre = population["tracks_per_genre"]
    splits = sorted({k for counts in per_genre.values() for k in counts} - {"tracks"},
                    key=lambda k: (["train", "validation", "test"] + [k]).index(k))
    genre_rows = "".join(
        f"<tr><td class=text>{escape(genre)}</td><td>{counts['tracks']}</td>"
        + "".join(f"<td>{counts.get(split, 0)}</td>" for split in splits) + "</tr>"
        for genre, counts in per_genre.items())
    dropped = "".join(f"<li>{escape(genre)}: {escape(why)}</li>"
                      for genre, why in population["genres_dropped"].items())
    return (
        f"<h4>Population</h4><p>Label <code>{escape(population['label'])}</code>; filters: "
        f"<code>{escape(filters)}</code>; {len(per_genre)} genres kept from "
        f"{population['library_tracks']} library tracks.</p>"
        "<table><tr><th class=text>step (in order)</th><th>tracks dropped</th>"
        f"<th>tracks left</th></tr>{steps}</table>"
        "<table><tr><th class=text>genre kept</th><th>tracks</th>"
        + "".join(f"<th>{escape(split)}</th>" for split in splits) + f"</tr>{genre_rows}</table>"
        + (f"<p>Genres dropped, and why:</p><ul>{dropped}</ul>" if dropped else ""))


def _statistics(store: Store, library: str, con: duckdb.DuckDBPyConnection) -> str:
    sections = []
    for extractor in store.extractors():
        for config in stored_configs(con, extractor, library):
            spec = f"{extractor}@{config}"
            stats = feature_stats(store, spec, library, con=con)
            summary = summarise(stats)
            sections.append(
                f"<h3>{escape(spec)}</h3><p><code>mfs stats {escape(spec)} --library "
                f"{escape(library)}</code></p>" + _frame_html(summary.drop(
                    columns=["extractor", "config_hash", "group"])) + _dead_names(stats))
    return "".join(sections) or "<p>No features stored for this library.</p>"


def _dead_names(stats: pd.DataFrame, most: int = 40) -> str:
    """Which dimensions are dead (constant over the library), by name: a count says that
    something is wrong, the names say what (a silent band, an unused tag)."""
    dead = stats[stats["dead"].astype(bool)]
    if dead.empty:
        return ""
    names = [f"{column}/{feature}" for column, feature in zip(dead["column"], dead["feature"],
                                                                strict=True)]
    shown = ", ".join(escape(str(name)) for name in names[:most])
    more = f" … and {len(names) - most} more" if len(names) > most else ""
    return f"<p>Dead dimensions ({len(names)}): {shown}{more}</p>"


def _frame_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
