"""Confidence intervals stay within what a proportion can be."""

from __future__ import annotations

from mfs.analysis.metrics import METRICS, fold_intervals


def test_two_fold_interval_is_clipped_to_the_possible_range() -> None:
    # Two folds scoring 0.8 and 1.0: the raw t-interval at 1 degree of freedom is
    # 0.9 ± 1.27, i.e. [-37 %, 217 %], which `mfs bench --folds 2` used to print.
    folds = [{metric: 0.8 for metric in METRICS}, {metric: 1.0 for metric in METRICS}]
    for low, high in fold_intervals(folds).values():
        assert low == 0.0 and high == 1.0


def test_many_folds_keep_the_t_interval() -> None:
    folds = [{metric: value for metric in METRICS} for value in (0.70, 0.72, 0.74, 0.76, 0.78)]
    low, high = fold_intervals(folds)["accuracy"]
    assert 0.70 < low < 0.74 < high < 0.78
