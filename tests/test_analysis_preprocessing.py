"""Correlation pruning and PCA: known answers on synthetic data, fitted on training rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.utils.estimator_checks import check_estimator

from mfs.analysis.models import build_pipeline
from mfs.analysis.preprocessing import CorrelationPruner, make_pca


def correlated_columns(n: int = 300, seed: int = 0) -> np.ndarray:
    """a, 2a+1, b, -b, a+b, c (so columns 1 and 3 are exact copies up to sign/scale)."""
    a, b, c = np.random.default_rng(seed).standard_normal((3, n))
    return np.column_stack([a, 2 * a + 1, b, -b, a + b, c]).astype(np.float32)


def test_exactly_correlated_columns_are_removed():
    pruner = CorrelationPruner(0.95).fit(correlated_columns())
    # a+b correlates ~0.71 with a and with b: kept; the later copy of each pair goes.
    assert pruner.support_.tolist() == [True, False, True, False, True, True]
    names = pruner.get_feature_names_out(["a", "2a+1", "b", "-b", "a+b", "c"])
    assert names.tolist() == ["a", "b", "a+b", "c"]
    assert pruner.transform(correlated_columns(seed=1)).shape == (300, 4)


def test_threshold_decides_which_pairs_count():
    X = correlated_columns()
    assert CorrelationPruner(0.5).fit(X).support_.tolist() == [True, False, True, False,
                                                              False, True]
    assert CorrelationPruner(1.0).fit(X).support_.all()  # nothing is *above* 1
    with pytest.raises(ValueError, match="threshold"):
        CorrelationPruner(0).fit(X)


def test_only_kept_columns_can_remove_others():
    # x2 correlates with x1 (dropped, because x1 correlates with x0) but not with x0.
    x0, e1, e2 = np.random.default_rng(0).standard_normal((3, 2000))
    X = np.column_stack([x0, x0 + e1, e1 + 0.1 * e2])
    r = np.corrcoef(X.T)
    assert r[0, 1] > 0.6 and r[1, 2] > 0.6 > abs(r[0, 2])
    assert CorrelationPruner(0.6).fit(X).support_.tolist() == [True, False, True]


def test_constant_and_nan_columns_do_not_break_pruning():
    X = correlated_columns()
    X[:, 5] = 3.0
    X[7, 0] = np.nan
    pruner = CorrelationPruner(0.95).fit(X)
    assert pruner.support_.tolist() == [True, False, True, False, True, True]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_pruner_follows_the_scikit_learn_contract():
    check_estimator(CorrelationPruner())


def test_pca_to_components_or_variance_fraction():
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((500, 3)) * [5.0, 3.0, 2.0]
    X = factors @ rng.standard_normal((3, 20)) + 0.01 * rng.standard_normal((500, 20))
    by_fraction = make_pca(0.99, seed=0).fit(X)
    assert by_fraction.n_components_ == 3
    assert by_fraction.explained_variance_ratio_.sum() >= 0.99
    by_count = make_pca(5, seed=0).fit(X)
    assert by_count.n_components_ == 5
    assert by_count.explained_variance_ratio_[3:].sum() < 1e-4
    assert make_pca(None, seed=0) is None
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="PCA"):
            make_pca(bad, seed=0)


def test_pipeline_learns_preprocessing_from_training_rows_only():
    rng = np.random.default_rng(0)
    a, noise = rng.standard_normal((2, 400))
    train, test = slice(0, 200), slice(200, 400)
    copy = a.copy()
    copy[test] = noise[test]  # a copy of column 0 on training rows only
    X = np.column_stack([a, copy, rng.standard_normal(400)])
    y = (a > 0).astype(int)
    pipeline = build_pipeline("logreg", prune=0.95, pca=2, seed=0).fit(X[train], y[train])
    assert pipeline.named_steps["prune"].support_.tolist() == [True, False, True]
    scaler = pipeline.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, X[train][:, [0, 2]].mean(axis=0))
    assert isinstance(pipeline.named_steps["pca"], PCA)
    assert pipeline[:-1].get_feature_names_out(["a", "copy", "c"]).tolist() == ["pca0", "pca1"]
    assert pipeline.score(X[test], y[test]) > 0.9
