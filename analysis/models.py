"""Classifiers by name, and the one preprocessing pipeline every benchmark uses.

Pipeline: mean imputation (NaN from failed or non-finite values) → optional correlation
pruning → StandardScaler → optional PCA → classifier. All steps are fitted inside
`Pipeline.fit` on training rows only, so no test statistics leak into preprocessing.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_sample_weight

from mfs.analysis.preprocessing import CorrelationPruner, make_pca

MODELS = ("xgboost", "logreg", "svm", "mlp", "probe")
CLASS_WEIGHTS = ("balanced",)
# Models without a class_weight setting: balanced weights reach them as sample weights.
SAMPLE_WEIGHTED = ("xgboost", "mlp", "probe")
# Models that early-stop on a validation set passed to `fit` (`eval_set`).
EARLY_STOPPED = ("probe",)
SMALL_MATRIX_CELLS = 2_000_000


def make_classifier(model: str, seed: int, probabilities: bool = False,
                    class_weight: str | None = None, params: dict | None = None):
    """A fresh, seeded classifier. `probabilities` asks for calibrated `predict_proba`
    where the model has none of its own (SVM), as soft voting needs. `class_weight` is set
    on the models that have it (logreg, SVM); the others get `sample_weights`. `params`
    replace the defaults below (the settings `--tune` chose)."""
    classifier = _default_classifier(model, seed, class_weight).set_params(**(params or {}))
    if model == "svm" and probabilities:
        return CalibratedClassifierCV(classifier, ensemble=False)
    return classifier


def _default_classifier(model: str, seed: int, class_weight: str | None):
    if model == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1,
                             subsample=0.8, colsample_bytree=0.8, tree_method="hist",
                             random_state=seed, verbosity=0)
    if model == "logreg":
        return LogisticRegression(C=1.0, max_iter=3000, class_weight=class_weight)
    if model == "svm":
        return SVC(C=1.0, kernel="rbf", random_state=seed, class_weight=class_weight)
    if model == "mlp":
        # One hidden layer of 512 units, early-stopped on 10 % of its training rows.
        return MLPClassifier(hidden_layer_sizes=(512,), alpha=1e-3, max_iter=300,
                             early_stopping=True, random_state=seed)
    if model == "probe":
        from mfs.analysis.probe import ProbeClassifier

        return ProbeClassifier(seed=seed)
    raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")


def xgboost_threads(rows: int, columns: int) -> int | None:
    """One thread for small matrices, all cores (None) for large ones: on small data
    OpenMP start-up and spin-waiting cost more than the work, badly so on busy machines
    (0.4 s single-threaded against 12 s with 2 threads on a loaded 2-core box)."""
    return 1 if rows * columns < SMALL_MATRIX_CELLS else None


def check_class_weight(class_weight: str | None) -> None:
    if class_weight is not None and class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"--class-weight {class_weight!r}: use {', '.join(CLASS_WEIGHTS)} "
                         "(or leave it out for unweighted training)")


def sample_weights(class_weight: str | None, model: str, y: np.ndarray) -> np.ndarray | None:
    """Per training track, the inverse of its genre's frequency (n / (k · n_genre), as
    scikit-learn's `class_weight="balanced"`), for models without a class_weight setting."""
    if class_weight is None or model not in SAMPLE_WEIGHTED:
        return None
    return compute_sample_weight(class_weight, y)


def model_params(model: str, seed: int, class_weight: str | None = None,
                 params: dict | None = None) -> dict:
    """The classifier's settings as recorded in the leaderboard (unset ones left out)."""
    params = make_classifier(model, seed, class_weight=class_weight, params=params).get_params()
    if class_weight is not None and model in SAMPLE_WEIGHTED:
        params["class_weight"] = f"{class_weight} (as sample weights)"
    return {k: v for k, v in sorted(params.items()) if v is not None}


def build_pipeline(model: str, prune: float | None = None, pca: float | None = None,
                   seed: int = 0, probabilities: bool = False,
                   class_weight: str | None = None, params: dict | None = None) -> Pipeline:
    """The benchmark pipeline; `prune` is the |r| threshold, `pca` components or fraction,
    `params` the classifier's settings that differ from its defaults."""
    steps = [("impute", SimpleImputer(strategy="mean", keep_empty_features=True))]
    if prune is not None:
        steps.append(("prune", CorrelationPruner(prune)))
    steps.append(("scale", StandardScaler()))
    if (reducer := make_pca(pca, seed)) is not None:
        steps.append(("pca", reducer))
    steps.append(("model", make_classifier(model, seed, probabilities, class_weight, params)))
    return Pipeline(steps)
