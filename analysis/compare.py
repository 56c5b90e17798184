"""Paired comparison of two leaderboard rows on the same test tracks (`mfs compare`).

Two scores with overlapping 95 % intervals may still differ reliably: both models saw the
same tracks, so what matters is where they disagree. The McNemar exact test asks whether
the tracks only A gets right outnumber those only B gets right by more than chance (a
two-sided binomial test at 1/2 over the discordant tracks); a paired bootstrap over tracks
gives a 95 % interval of the accuracy difference. Rows scored on different tracks are
refused: pairing them would compare populations, not models.
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
    accuracy_a: float
    accuracy_b: float
    a_only: int  # tracks A gets right and B wrong
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
        tests = (f"McNemar exact p = {self.p_value:.3g}; {self.a_only} tracks only A gets "
                 f"right, {self.b_only} only B, of {self.n_tracks}")
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
    replacement (the same tracks for both). Each track's difference is −1, 0 or 1, so a
    resample is a multinomial draw of their counts: no n × resamples index matrix."""
    diff = correct_a.astype(np.int8) - correct_b.astype(np.int8)
    n = len(diff)
    shares = [np.mean(diff == -1), np.mean(diff == 0), np.mean(diff == 1)]
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)
    means = (counts[:, 2] - counts[:, 0]) / n
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare_predictions(a: pd.DataFrame, b: pd.DataFrame, name_a: str = "A",
                        name_b: str = "B", ids: tuple[str, str] = ("A", "B"),
                        seed: int = 0) -> Comparison:
    """Pair two prediction tables (track_id, truth, predicted) by track and compare them."""
    if a.empty or b.empty:
        raise ValueError(f"{name_a if a.empty else name_b} has no stored predictions")
    if a["track_id"].duplicated().any() or b["track_id"].duplicated().any():
        raise ValueError("a row's predictions name a track twice; compare one seed's")
    paired = a.merge(b, on="track_id", suffixes=("_a", "_b"))
    if len(paired) != len(a) or len(paired) != len(b):
        raise ValueError(f"{name_a} and {name_b} were not scored on the same test tracks "
                         f"({len(a)} and {len(b)} tracks, {len(paired)} in common); compare "
                         "rows of one split, seed and population")
    if (paired["truth_a"] != paired["truth_b"]).any():
        raise ValueError(f"{name_a} and {name_b} label the same tracks differently (another "
                         "--label or population); compare rows of one population")
    right_a = (paired["predicted_a"] == paired["truth_a"]).to_numpy()
    right_b = (paired["predicted_b"] == paired["truth_b"]).to_numpy()
    a_only, b_only = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    low, high = paired_bootstrap(right_a, right_b, seed)
    return Comparison(ids[0], ids[1], name_a, name_b, len(paired), float(right_a.mean()),
                      float(right_b.mean()), a_only, b_only, mcnemar_exact(a_only, b_only),
                      low, high)


def compare_rows(store: Store, key_a: str, key_b: str, library: str | None = None,
                 con: duckdb.DuckDBPyConnection | None = None) -> Comparison:
    """Compare two leaderboard rows named by id (or prefix) or feature set
    (`leaderboard.find_row`; B's with A's model, split and seed where there is one), on
    the predictions of each row's own seed."""
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
    """The test predictions of a leaderboard row's own seed (the first of its repeats)."""
    if not isinstance(row["row_id"], str):
        return pd.DataFrame(columns=["track_id", "truth", "predicted"])
    return con.execute(
        "SELECT track_id, truth, predicted FROM predictions WHERE row_id = $row AND "
        "seed = $seed ORDER BY track_id", {"row": row["row_id"], "seed": int(row["seed"])}
    ).df()
