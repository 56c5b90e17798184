"""Paired comparison of two leaderboard rows on the same test tracks (`mfs compare`).

Two scores with overlapping 95 % intervals may still differ reliably: both models saw the
same tracks, so what matters is where they disagree. The McNemar exact test asks whether
the tracks only A gets right outnumber those only B gets right by more than chance (a
two-sided binomial test at 1/2 over the discordant tracks); a paired bootstrap over tracks
gives a 95 % interval of the accuracy difference. Rows scored on different tracks are
refused: pairing them would compare populations, not models.

Rows benchmarked with `--seeds N` are compared over all their seeds, paired in order (A's
first seed with B's first, …, up to the fewer of the two): per track, the share of seeds
each row gets it right. The track stays the unit that is resampled and tested, since one
track's seeds are not independent evidence: the exact test becomes a sign test over tracks
(A right more often than B, or less), which is McNemar's when there is one seed, and the
bootstrap resamples tracks with their seed-averaged differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from mfs.analysis.leaderboard import find_row, read_leaderboard
from mfs.analysis.metrics import BOOTSTRAP_RESAMPLES
from mfs.store import Store

if TYPE_CHECKING:
    import duckdb

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """A against B on the same `n_tracks` test predictions."""

    a: str  # row ids
    b: str
    name_a: str  # feature set · model
    name_b: str
    n_tracks: int
    n_seeds: int  # seeds paired per track
    accuracy_a: float
    accuracy_b: float
    a_only: int  # tracks A gets right and B wrong (over seeds: right more often than B)
    b_only: int
    p_value: float
    low: float  # 95 % paired-bootstrap interval of accuracy_a - accuracy_b
    high: float

    @property
    def difference(self) -> float:
        return self.accuracy_a - self.accuracy_b

    @property
    def distinguishable(self) -> bool:
        """Both tests agree that the difference is not noise."""
        return self.p_value < ALPHA and (self.low > 0 or self.high < 0)

    def verdict(self) -> str:
        """The plain-words answer, one line."""
        better, worse = ((self.name_a, self.name_b) if self.difference >= 0
                         else (self.name_b, self.name_a))
        points = (f"{100 * abs(self.difference):.1f} points (95% CI of A−B "
                  f"[{100 * self.low:.1f}, {100 * self.high:.1f}])")
        if self.n_seeds == 1:
            tests = (f"McNemar exact p = {self.p_value:.3g}; {self.a_only} tracks only A "
                     f"gets right, {self.b_only} only B, of {self.n_tracks}")
        else:
            tests = (f"exact sign test over tracks p = {self.p_value:.3g}; over "
                     f"{self.n_seeds} paired seeds, A gets {self.a_only} tracks right more "
                     f"often than B, B {self.b_only}, of {self.n_tracks}")
        if self.distinguishable:
            return (f"{better} beats {worse} by {points}: distinguishable from noise "
                    f"({tests})")
        return (f"{better} vs {worse}: a difference of {points}, not distinguishable from "
                f"noise ({tests})")


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: twice the smaller binomial tail at 1/2 over the
    discordant tracks, capped at 1 (1 when there are none)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(a_only, b_only), n, 0.5)))


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile interval of accuracy(A) − accuracy(B) over tracks resampled with
    replacement (the same tracks for both). `correct_*` are (tracks,) booleans or (tracks,
    seeds) for paired seeds. A track's difference takes one of 2·seeds + 1 values, so a
    resample is a multinomial draw of their counts: no n × resamples index matrix."""
    right_a, right_b = (np.asarray(c, dtype=np.int16).reshape(len(c), -1)
                        for c in (correct_a, correct_b))
    k = right_a.shape[1]
    steps = (right_a - right_b).sum(axis=1) + k  # 0 … 2k: the difference in 1/k steps
    n = len(steps)
    shares = np.bincount(steps, minlength=2 * k + 1) / n
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)
    means = counts @ ((np.arange(2 * k + 1) - k) / k) / n
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare_predictions(a: pd.DataFrame, b: pd.DataFrame, name_a: str = "A",
                        name_b: str = "B", ids: tuple[str, str] = ("A", "B"),
                        seed: int = 0) -> Comparison:
    """Pair two prediction tables (track_id, truth, predicted, optionally seed) by track
    and, over seeds, in seed order; compare them."""
    if a.empty or b.empty:
        raise ValueError(f"{name_a if a.empty else name_b} has no stored predictions")
    right_a, truth_a = _correct_by_seed(a, name_a)
    right_b, truth_b = _correct_by_seed(b, name_b)
    common = right_a.index.intersection(right_b.index)
    if len(common) != len(right_a) or len(common) != len(right_b):
        raise ValueError(f"{name_a} and {name_b} were not scored on the same test tracks "
                         f"({len(right_a)} and {len(right_b)} tracks, {len(common)} in "
                         "common); compare rows of one split and population")
    if (truth_a != truth_b.loc[truth_a.index]).any():
        raise ValueError(f"{name_a} and {name_b} label the same tracks differently (another "
                         "--label or population); compare rows of one population")
    k = min(right_a.shape[1], right_b.shape[1])
    right_a = right_a.iloc[:, :k].to_numpy()
    right_b = right_b.loc[common].iloc[:, :k].to_numpy()
    per_track = right_a.mean(axis=1) - right_b.mean(axis=1)
    a_only, b_only = int((per_track > 0).sum()), int((per_track < 0).sum())
    low, high = paired_bootstrap(right_a, right_b, seed)
    return Comparison(ids[0], ids[1], name_a, name_b, len(common), k,
                      float(right_a.mean()), float(right_b.mean()), a_only, b_only,
                      mcnemar_exact(a_only, b_only), low, high)


def _correct_by_seed(predictions: pd.DataFrame, name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Per track (sorted), whether each seed (columns in seed order) got it right, and
    its truth."""
    table = predictions if "seed" in predictions else predictions.assign(seed=0)
    if table.duplicated(["track_id", "seed"]).any():
        raise ValueError(f"{name}'s predictions name a track twice for one seed")
    right = (table.assign(right=table["predicted"] == table["truth"])
             .pivot(index="track_id", columns="seed", values="right").sort_index())
    if right.isna().any().any():
        raise ValueError(f"{name}'s seeds were not scored on the same test tracks")
    truth = table.drop_duplicates("track_id").set_index("track_id")["truth"].sort_index()
    return right.astype(bool), truth


def compare_rows(store: Store, key_a: str, key_b: str, library: str | None = None,
                 con: duckdb.DuckDBPyConnection | None = None) -> Comparison:
    """Compare two leaderboard rows named by id (or prefix) or feature set
    (`leaderboard.find_row`; B's with A's model, split and seed where there is one), on
    the predictions of every seed of each row."""
    con = con or store.connect()
    board = read_leaderboard(store, library, con=con)
    row_a = find_row(board, key_a)
    row_b = find_row(board, key_b, like=row_a)
    if row_a["row_id"] == row_b["row_id"]:
        raise ValueError(f"{key_a!r} and {key_b!r} name the same leaderboard row")
    return compare_loaded(con, row_a, row_b)


def compare_loaded(con: duckdb.DuckDBPyConnection, row_a: pd.Series,
                   row_b: pd.Series) -> Comparison:
    """`compare_predictions` of two leaderboard rows read from the store."""
    names = [f"{row.feature_set} · {row.model}" for row in (row_a, row_b)]
    tables = []
    for row, name in zip((row_a, row_b), names, strict=True):
        table = row_predictions(con, row)
        if table.empty:
            raise ValueError(f"leaderboard row {row['row_id'] or '(no id)'} ({name}) has no "
                             f"stored predictions (made before mfs kept them); rerun: "
                             f"{row['command']}")
        tables.append(table)
    return compare_predictions(*tables, *names, ids=(row_a["row_id"], row_b["row_id"]),
                               seed=int(row_a["seed"]))


def row_predictions(con: duckdb.DuckDBPyConnection, row: pd.Series) -> pd.DataFrame:
    """The test predictions of a leaderboard row, every seed of its repeats."""
    if not isinstance(row["row_id"], str):
        return pd.DataFrame(columns=["track_id", "seed", "truth", "predicted"])
    return con.execute(
        "SELECT track_id, seed, truth, predicted FROM predictions WHERE row_id = $row "
        "ORDER BY seed, track_id", {"row": row["row_id"]}).df()
