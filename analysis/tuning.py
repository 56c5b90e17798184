"""`mfs bench --tune`: choose a classifier's settings without looking at the test part.

Each model has a small documented grid (`SEARCH_SPACES`; small so that a tuned benchmark
costs seconds on GTZAN-sized data). Every candidate is scored by accuracy
- on the dataset's validation part, when the fold has one (official split: GTZAN's
  fault-filtered `valid_filtered.txt`, FMA's `validation`); candidates are fitted on `train`;
- else by the mean accuracy over `INNER_FOLDS` stratified folds of the training part that
  keep related tracks together, as the outer split keeps them apart: grouped by artist when
  every training track has one (seeded like the outer folds), else contiguous runs of
  tracks in track-id order. Shuffled inner folds would put one artist's or one album's
  tracks on both sides (GTZAN numbers an artist's files consecutively): on the published
  MSD-musicnn taggrams their accuracies were 87 % against 80 % for contiguous folds and
  75 % on the artist-disjoint test part, so they rewarded settings that memorise artists.
The best candidate wins; ties go to the earlier one in grid order, so the search is
deterministic and rerunning the stored command (`--tune`) repeats it. Then the chosen
settings are fitted once more, on train + validation (as GridSearchCV with a predefined
split refits, which is how the musicnn GTZAN result was tuned), except for models that
early-stop on the validation part (the probe, as MARBLE does): they keep training on
`train` and stopping on validation. Only that final model sees the test part.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from mfs.analysis.models import EARLY_STOPPED
from mfs.analysis.predictors import Predictor, Recipe
from mfs.analysis.splits import Fold
from mfs.analysis.training_table import Block

INNER_FOLDS = 5
SEARCH_SPACES: dict[str, dict[str, tuple]] = {
    "svm": {"C": (0.1, 1.0, 10.0, 100.0), "gamma": ("scale", 0.001, 0.01, 0.1)},
    "logreg": {"C": (0.001, 0.01, 0.1, 1.0, 10.0)},
    "xgboost": {"max_depth": (3, 6), "learning_rate": (0.1, 0.3), "n_estimators": (100, 300)},
    # scikit-learn's MLP has no dropout; its L2 penalty `alpha` is the regulariser searched.
    "mlp": {"hidden_layer_sizes": ((256,), (512,)), "learning_rate_init": (0.001, 0.01),
            "alpha": (0.0001, 0.01)},
    # MARBLE keeps the probe's width at 512 and tunes its learning rate.
    "probe": {"learning_rate": (0.0003, 0.001, 0.003), "dropout": (0.2, 0.5)},
}


@dataclass(frozen=True)
class Choice:
    """The settings chosen for one outer fold, and how."""

    params: dict
    score: float  # the winner's validation (or mean inner-fold) accuracy
    selected_on: str
    fitted_on: str
    fit_rows: np.ndarray  # the rows the final model is fitted on


def candidates(model: str) -> list[dict]:
    """Every combination of the model's grid, in grid order."""
    if model not in SEARCH_SPACES:
        raise ValueError(f"--tune has no search space for {model!r}; tune one of "
                         f"{', '.join(SEARCH_SPACES)}")
    space = SEARCH_SPACES[model]
    return [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]


def choose(recipe: Recipe, blocks: list[Block], feature_names: list[str], X: np.ndarray,
           y: np.ndarray, n_classes: int, fold: Fold, artists: np.ndarray) -> Choice:
    """Search the model's grid on `fold`'s validation part or inner folds of its train
    (`artists`: per row of `X`, None where unknown)."""
    if len(fold.validation):
        checks = [(fold.train, fold.validation)]
        selected_on = f"validation part ({len(fold.validation)} tracks)"
    else:
        checks, selected_on = _inner_folds(fold.train, y, artists, recipe.seed)
    early_stopped = recipe.model in EARLY_STOPPED
    scores = []
    for params in candidates(recipe.model):
        tried = replace(recipe, params=tuple(params.items()))
        accuracies = []
        for fit_rows, score_rows in checks:
            predictor = Predictor(tried, blocks, feature_names)
            # The probe early-stops on the validation part it is scored on (MARBLE);
            # within inner folds it holds out a tenth of the inner training rows itself.
            held = (score_rows, y[score_rows]) if early_stopped and len(fold.validation) \
                else None
            predictor.fit(X, fit_rows, y[fit_rows], n_classes, held)
            accuracies.append(float(np.mean(predictor.predict(X, score_rows) == y[score_rows])))
        scores.append(float(np.mean(accuracies)))
    best = int(np.argmax(scores))  # first of the best: ties keep grid order
    if early_stopped or not len(fold.validation):
        fit_rows, fitted_on = fold.train, "training part"
        if early_stopped and len(fold.validation):
            fitted_on += ", early stopping on the validation part"
    else:
        fit_rows = np.sort(np.concatenate([fold.train, fold.validation]))
        fitted_on = "training + validation parts"
    return Choice(candidates(recipe.model)[best], scores[best], selected_on, fitted_on, fit_rows)


def tuning_record(model: str, choices: list[Choice]) -> dict:
    """What the leaderboard keeps of a search: the grid, and per outer fold the chosen
    settings, their selection accuracy, what chose them and what the model was fitted on."""
    return {"space": SEARCH_SPACES[model], "selected_on": choices[0].selected_on,
            "fitted_on": choices[0].fitted_on,
            "chosen": [c.params for c in choices],
            "selection_accuracy": [round(c.score, 4) for c in choices]}


def _inner_folds(train: np.ndarray, y: np.ndarray, artists: np.ndarray,
                 seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Inner (fit, score) row pairs over `train` and how they were made."""
    labels, counts = np.unique(y[train], return_counts=True)
    if counts.min() < INNER_FOLDS:
        raise ValueError(f"--tune: a genre has only {int(counts.min())} training tracks, "
                         f"fewer than the {INNER_FOLDS} inner folds it is tuned on")
    train = np.sort(train)  # track-id order: rows of a training table are sorted by id
    groups = artists[train]
    if all(a is not None for a in groups) and len(set(groups)) >= INNER_FOLDS:
        splitter = StratifiedGroupKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=seed)
        pairs = splitter.split(train, y[train], groups=groups.astype(str))
        how = "artist-grouped"
    else:
        pairs = StratifiedKFold(n_splits=INNER_FOLDS).split(train, y[train])
        how = "contiguous (track-id order)"
    return ([(train[a], train[b]) for a, b in pairs],
            f"{INNER_FOLDS} {how} inner folds of the training part")
