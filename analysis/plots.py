"""Figures for the HTML report, drawn with matplotlib's Agg canvas (no display needed).

Figures are built as `Figure` objects rather than through pyplot, so no global state
is shared between plots or with whoever imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def confusion_png(matrix: np.ndarray, labels: list[str], title: str, path: Path) -> Path:
    """Confusion matrix (rows = true genre) normalised per true genre, on one fixed colour
    scale (0 to 100 % of the genre's tracks), so matrices of different entries and of
    genres of different sizes compare side by side; each cell shows its share and count."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = 1.6 + 0.45 * len(labels)
    figure = Figure(figsize=(size + 1.2, size))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true genre")
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    for (i, j), share in np.ndenumerate(shares):
        axes.text(j, i, f"{100 * share:.0f}%\n{matrix[i, j]}", ha="center", va="center",
                  fontsize=6, color="white" if share > 0.5 else "black")
    return _save(figure, path)


def importance_png(shares: dict[str, float], title: str, path: Path, top: int = 20) -> Path:
    """Horizontal bars of the largest gain shares, largest on top."""
    items = sorted(shares.items(), key=lambda item: -item[1])[:top][::-1]
    figure = Figure(figsize=(8, 1.0 + 0.28 * len(items)))
    axes = figure.add_subplot()
    axes.barh([name for name, _ in items], [share for _, share in items], color="#4a7ab5")
    axes.tick_params(axis="y", labelsize=7)
    axes.set_xlabel("share of total XGBoost gain")
    axes.set_title(title, fontsize=9)
    return _save(figure, path)


def scores_png(names: list[str], scores: np.ndarray, lows: np.ndarray, highs: np.ndarray,
               path: Path, metric: str = "accuracy") -> Path:
    """One row per entry in the given order (best first) from the top: the score as a dot
    with its 95 % interval as a bar."""
    order = np.arange(len(names))[::-1]  # rows are drawn bottom-up
    scores, lows, highs = (100 * np.asarray(a, dtype=float)[order] for a in (scores, lows, highs))
    figure = Figure(figsize=(9, 1.0 + 0.26 * len(order)))
    axes = figure.add_subplot()
    axes.errorbar(scores, np.arange(len(order)), xerr=[scores - lows, highs - scores],
                  fmt="o", color="#4a7ab5", ecolor="#9ab", capsize=2, markersize=4)
    axes.set_yticks(range(len(order)), [names[i] for i in order], fontsize=7)
    axes.set_xlabel(f"{metric} % (95% CI)")
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def layers_png(lines: dict[str, tuple[list[int], list[float], list[float], list[float]]],
               path: Path, metric: str = "accuracy") -> Path:
    """Score against layer, one line per (model, extractor) with its 95 % interval as a band."""
    figure = Figure(figsize=(8, 4.2))
    axes = figure.add_subplot()
    for name, (layers, scores, lows, highs) in lines.items():
        axes.plot(layers, 100 * np.asarray(scores), marker="o", markersize=3, label=name)
        axes.fill_between(layers, 100 * np.asarray(lows), 100 * np.asarray(highs), alpha=0.2)
    axes.set_xlabel("layer")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"{metric} % (95% CI)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    FigureCanvasAgg(figure).print_png(str(path))
    return path
