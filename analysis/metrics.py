"""Scores with 95 % confidence intervals, per-genre precision/recall, confusion matrices.

Intervals: on a single test set (official split) a percentile bootstrap over test tracks;
across k folds a t-interval over the fold scores. Both are seeded/deterministic.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
BOOTSTRAP_RESAMPLES = 1000


def scores_from_confusion(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro-F1 of one or a stack of confusion matrices
    (rows = true class, columns = predicted). Classes absent from the truth are left out
    of the balanced accuracy, as scikit-learn does."""
    matrices = np.asarray(matrices, dtype=np.float64)
    single = matrices.ndim == 2
    m = matrices[None] if single else matrices
    correct = np.trace(m, axis1=1, axis2=2)
    total = m.sum(axis=(1, 2))
    true_counts, predicted_counts = m.sum(axis=2), m.sum(axis=1)
    diagonal = np.diagonal(m, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = diagonal / true_counts
        precision = np.where(predicted_counts > 0, diagonal / predicted_counts, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = true_counts > 0
    result = {
        "accuracy": correct / total,
        "balanced_accuracy": np.nanmean(np.where(present, recall, np.nan), axis=1),
        "macro_f1": np.where(present, np.nan_to_num(f1), 0.0).sum(axis=1) / present.sum(axis=1),
    }
    return {k: v[0] for k, v in result.items()} if single else result


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def bootstrap_intervals(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, seed: int,
                        resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals from resampling the test tracks with replacement."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(y_true), size=(resamples, len(y_true)))
    cells = y_true[picks] * n_classes + y_pred[picks]
    offsets = np.arange(resamples)[:, None] * n_classes * n_classes
    counts = np.bincount((cells + offsets).ravel(), minlength=resamples * n_classes ** 2)
    scores = scores_from_confusion(counts.reshape(resamples, n_classes, n_classes))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
            for k, v in scores.items()}


def fold_intervals(fold_scores: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """95 % t-intervals of the mean over folds, clipped to [0, 1]: every metric here is a
    proportion, and with few folds (t at 1 degree of freedom is 12.7) the raw interval
    runs far past both ends, which would print as scores below 0 % or above 100 %."""
    intervals = {}
    for metric in METRICS:
        values = np.array([s[metric] for s in fold_scores])
        half = (stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                if len(values) > 1 else 0.0)
        intervals[metric] = (float(max(values.mean() - half, 0.0)),
                             float(min(values.mean() + half, 1.0)))
    return intervals


def per_class(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support per class name."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(labels)), zero_division=0)
    return {name: {"precision": float(p), "recall": float(r), "f1": float(f),
                   "support": int(s)}
            for name, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)}
