"""How a feature set becomes predictions: one pipeline on concatenated features, or
soft voting (probability averaging) over one pipeline per selection.

Both are fitted on training rows only and expose per-feature XGBoost gain mapped back to
the stored feature names through the pipeline's `get_feature_names_out`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline

from mfs.analysis.models import EARLY_STOPPED, build_pipeline, sample_weights, xgboost_threads
from mfs.analysis.training_table import Block

ENSEMBLES = ("concat", "vote")


@dataclass(frozen=True)
class Recipe:
    """Everything that defines the fitted predictor besides the data."""

    model: str
    ensemble: str
    prune: float | None
    pca: float | None
    seed: int
    class_weight: str | None = None
    params: tuple[tuple[str, object], ...] = ()  # classifier settings off its defaults

    def settings(self) -> dict:
        return dict(self.params)


class Predictor:
    """Fits one pipeline per group of blocks: `concat` has a single group holding all
    blocks and predicts with its classifier; `vote` has one group per block and predicts
    the class with the highest mean probability."""

    def __init__(self, recipe: Recipe, blocks: list[Block], feature_names: list[str]) -> None:
        if recipe.ensemble not in ENSEMBLES:
            raise ValueError(f"unknown ensemble {recipe.ensemble!r}; use "
                             f"{' or '.join(ENSEMBLES)}")
        self.recipe = recipe
        groups = [blocks] if recipe.ensemble == "concat" else [[b] for b in blocks]
        self.groups = [(_columns(group), _names(group, feature_names)) for group in groups]
        self.pipelines: list[Pipeline] = []

    def fit(self, X: np.ndarray, rows: np.ndarray, y: np.ndarray, n_classes: int,
            validation: tuple[np.ndarray, np.ndarray] | None = None) -> Predictor:
        """Fit on `X[rows]` (only the columns each pipeline uses are copied). `validation`
        (rows, labels) is the early-stopping set of the models that have one (the probe);
        the others never see it."""
        missing = sorted(set(range(n_classes)) - set(np.unique(y)))
        if missing:
            raise ValueError(f"the training rows lack {len(missing)} of the {n_classes} "
                             "genres; use a split whose training part has every genre")
        r = self.recipe
        self.pipelines = []
        for columns, _ in self.groups:
            train = _submatrix(X, rows, columns)
            pipeline = build_pipeline(r.model, r.prune, r.pca, r.seed,
                                      probabilities=len(self.groups) > 1,
                                      class_weight=r.class_weight, params=r.settings())
            if r.model == "xgboost":
                pipeline.set_params(model__n_jobs=xgboost_threads(*train.shape))
            weights = sample_weights(r.class_weight, r.model, y)
            if r.model in EARLY_STOPPED:
                held = None if validation is None else (
                    _submatrix(X, validation[0], columns), validation[1])
                self.pipelines.append(_fit_early_stopped(pipeline, train, y, weights, held))
                continue
            fit_params = {} if weights is None else {"model__sample_weight": weights}
            self.pipelines.append(pipeline.fit(train, y, **fit_params))
        return self

    def predict(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Class indices for `X[rows]`."""
        pairs = list(zip(self.pipelines, self.groups, strict=True))
        if len(pairs) == 1:
            pipeline, (columns, _) = pairs[0]
            return pipeline.predict(_submatrix(X, rows, columns))
        return np.mean([p.predict_proba(_submatrix(X, rows, c)) for p, (c, _) in pairs],
                       axis=0).argmax(axis=1)

    def n_features_used(self) -> int:
        """Dimensions reaching the classifiers (after pruning and PCA)."""
        return sum(len(p[:-1].get_feature_names_out(names))
                   for p, (_, names) in zip(self.pipelines, self.groups, strict=True))

    def gain_shares(self) -> dict[str, float]:
        """XGBoost total gain per output feature name, as shares (each pipeline weighs
        equally); empty for other models."""
        if self.recipe.model != "xgboost":
            return {}
        shares: dict[str, float] = {}
        for pipeline, (_, names) in zip(self.pipelines, self.groups, strict=True):
            out_names = pipeline[:-1].get_feature_names_out(names)
            gains = pipeline[-1].get_booster().get_score(importance_type="total_gain")
            total = sum(gains.values()) or 1.0
            for key, gain in gains.items():
                name = str(out_names[int(key.removeprefix("f"))])
                shares[name] = shares.get(name, 0.0) + gain / total / len(self.pipelines)
        return shares


def _fit_early_stopped(pipeline: Pipeline, train: np.ndarray, y: np.ndarray,
                       weights: np.ndarray | None,
                       validation: tuple[np.ndarray, np.ndarray] | None) -> Pipeline:
    """Fit the preprocessing on the training rows, then the classifier with the validation
    rows passed through that same preprocessing (never fitted on them)."""
    features = pipeline[:-1].fit_transform(train, y)
    eval_set = None if validation is None or not len(validation[1]) else (
        pipeline[:-1].transform(validation[0]), validation[1])
    pipeline[-1].fit(features, y, sample_weight=weights, eval_set=eval_set)
    return pipeline


def _columns(blocks: list[Block]) -> slice | np.ndarray:
    """A slice when the blocks are contiguous (a plain strided copy), else indices."""
    if all(a.stop == b.start for a, b in zip(blocks, blocks[1:], strict=False)):
        return slice(blocks[0].start, blocks[-1].stop)
    return np.concatenate([np.arange(b.start, b.stop) for b in blocks])


def _names(blocks: list[Block], feature_names: list[str]) -> np.ndarray:
    return np.asarray([n for b in blocks for n in feature_names[b.start:b.stop]], dtype=object)


def _submatrix(X: np.ndarray, rows: np.ndarray, columns: slice | np.ndarray) -> np.ndarray:
    """X[rows] restricted to `columns`, copying only those columns."""
    if isinstance(columns, slice):
        return X[rows, columns]
    return X[np.ix_(rows, columns)]
