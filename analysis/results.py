"""What one benchmark configuration produced, and how predictions become scores.

A `BenchmarkConfig` is everything needed to reproduce a number (with the store's
contents); `BenchmarkResult` holds the scores, intervals, per-genre figures, confusion
matrix and feature importance that become one leaderboard row.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field

import numpy as np

from mfs.analysis.metrics import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_intervals,
    confusion,
    fold_intervals,
    per_class,
    scores_from_confusion,
)
from mfs.analysis.population import Population


@dataclass(frozen=True)
class BenchmarkConfig:
    """One leaderboard entry's settings. `features` are selection specs joined as one
    feature set; `ensemble` says how (concatenation or voting over per-selection models).
    `prompts` is the prompt template of a zero-shot entry (`{genre}` filled in; None:
    `analysis.prompts.DEFAULT_TEMPLATE`); `population` the label and track filters;
    `class_weight="balanced"` weighs each training track by the inverse of its genre's
    frequency; `seeds` repeats training (and k-fold shuffles) with seeds `seed` …
    `seed + seeds - 1`, whose spread is reported beside the first seed's interval; `tune`
    chooses the classifier's settings first (`analysis.tuning`)."""

    library: str
    features: tuple[str, ...]
    model: str = "xgboost"
    ensemble: str = "concat"
    prune: float | None = None
    pca: float | None = None
    split: str = "auto"
    folds: int = 5
    seed: int = 0
    prompts: str | None = None
    population: Population = Population()
    class_weight: str | None = None
    seeds: int = 1
    tune: bool = False

    @property
    def feature_set(self) -> str:
        """`a+b` for concatenation, `a|b` for voting, as shown in the leaderboard."""
        return ("|" if self.ensemble == "vote" else "+").join(self.features)

    def to_json(self) -> str:
        """The settings as JSON; population, class weight, repeats and tune only when set,
        so entries made before they existed keep their JSON."""
        settings = asdict(self)
        settings["population"] = self.population.settings()
        if self.seeds == 1:
            del settings["seeds"]
        for key in ("population", "class_weight", "tune"):
            if not settings[key]:
                del settings[key]
        return json.dumps(settings, sort_keys=True)

    def command(self) -> str:
        """The `mfs bench` command line that reproduces this entry."""
        args = ["mfs", "bench", self.library, "--features", "+".join(self.features),
                "--model", self.model, "--split", self.split, "--seed", str(self.seed)]
        if self.ensemble != "concat":
            args += ["--ensemble", self.ensemble]
        if self.prune is not None:
            args += ["--prune", f"{self.prune:g}"]
        if self.pca is not None:
            args += ["--pca", f"{self.pca:g}"]
        if self.split in ("kfold", "artist", "auto"):
            args += ["--folds", str(self.folds)]
        if self.prompts is not None:
            args += ["--prompts", self.prompts]
        if self.class_weight is not None:
            args += ["--class-weight", self.class_weight]
        if self.seeds > 1:
            args += ["--seeds", str(self.seeds)]
        if self.tune:
            args += ["--tune"]
        return shlex.join(args + self.population.arguments())


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    split: str
    labels: list[str]
    selections: list[dict]
    n_tracks: int
    n_train: int
    n_test: int
    n_features_in: int
    n_features_used: int
    scores: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    ci_method: str
    per_genre: dict[str, dict]
    confusion: np.ndarray
    fold_scores: list[dict[str, float]]
    dropped: dict
    duration_s: float
    model_params: dict = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)
    importance_by_selection: dict[str, float] = field(default_factory=dict)
    population: dict = field(default_factory=dict)
    # Per test track of every seed: track_id, truth, predicted (label names), fold, seed.
    predictions: dict[str, list] = field(default_factory=dict)
    # The three metrics per seed (one entry unless `config.seeds` > 1).
    seed_scores: list[dict] = field(default_factory=list)
    leak: str | None = None  # one line when the split is known to leak (analysis/leakage.py)

    def seed_spread(self, metric: str) -> tuple[float, float]:
        """Mean and standard deviation (ddof=1; 0 with one seed) of `metric` over seeds."""
        values = np.array([s[metric] for s in self.seed_scores] or [self.scores[metric]])
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def prediction_rows(track_ids: np.ndarray, labels: list[str], truths: list[np.ndarray],
                    predictions: list[np.ndarray], tests: list[np.ndarray],
                    fold_names: list[str], seed: int) -> dict[str, list]:
    """Columns of the `predictions` table for one seed's folds (label indices → names)."""
    names = np.asarray(labels, dtype=object)
    return {
        "track_id": [str(t) for test in tests for t in track_ids[test]],
        "truth": [str(g) for t in truths for g in names[t]],
        "predicted": [str(g) for p in predictions for g in names[p]],
        "fold": [name for name, test in zip(fold_names, tests, strict=True)
                 for _ in range(len(test))],
        "seed": [seed] * sum(len(test) for test in tests),
    }


def merge_columns(parts: list[dict[str, list]]) -> dict[str, list]:
    """Column-wise concatenation of `prediction_rows` of several seeds."""
    return {key: [v for part in parts for v in part[key]] for key in parts[0]} if parts else {}


def score_folds(truths: list[np.ndarray], predictions: list[np.ndarray], labels: list[str],
                seed: int) -> dict:
    """Scores over pooled predictions; intervals by bootstrap (one fold) or across folds.

    With k folds the point estimates are the fold means (what the interval is around);
    per-genre figures and the confusion matrix pool every fold's test predictions.
    """
    k = len(labels)
    fold_scores = [{m: float(v) for m, v in scores_from_confusion(confusion(t, p, k)).items()}
                   for t, p in zip(truths, predictions, strict=True)]
    y_true, y_pred = np.concatenate(truths), np.concatenate(predictions)
    if len(truths) == 1:
        scores = fold_scores[0]
        intervals = bootstrap_intervals(y_true, y_pred, k, seed)
        method = f"bootstrap over test tracks, {BOOTSTRAP_RESAMPLES} resamples"
    else:
        scores = {m: float(np.mean([s[m] for s in fold_scores])) for m in fold_scores[0]}
        intervals = fold_intervals(fold_scores)
        method = f"t-interval over {len(truths)} folds"
    return {"scores": scores, "intervals": intervals, "ci_method": method,
            "per_genre": per_class(y_true, y_pred, labels),
            "confusion": confusion(y_true, y_pred, k), "fold_scores": fold_scores}
