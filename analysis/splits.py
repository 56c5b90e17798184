"""Train/test splits without leakage, deterministic for a seed.

- `official`: the dataset's own split column (fit on `train`, score on `test`; its
  `validation` tracks are kept apart for tuning and early stopping);
- `kfold`: stratified k-fold over all labelled tracks;
- `artist`: stratified group k-fold with the artist as group, so no artist is on both sides;
- `auto`: `official` when the library's tracks carry train and test splits, else `kfold`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

SPLITS = ("auto", "official", "kfold", "artist")


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray  # row indices
    test: np.ndarray
    # The dataset's validation part (official split only): chooses settings and stops
    # early; k-fold splits have none, tuning uses inner folds of `train` instead.
    validation: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))


def resolve_split(split: str, dataset_split: np.ndarray) -> str:
    """`auto` → `official` or `kfold`; checks the name."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if split != "auto":
        return split
    present = set(dataset_split[dataset_split != None])  # noqa: E711 (elementwise)
    return "official" if {"train", "test"} <= present else "kfold"


def make_folds(split: str, labels: np.ndarray, dataset_split: np.ndarray,
               artists: np.ndarray, seed: int, k: int = 5) -> list[Fold]:
    """The folds of a resolved split scheme over the rows of a training table."""
    if split == "official":
        train = np.flatnonzero(dataset_split == "train")
        test = np.flatnonzero(dataset_split == "test")
        if not len(train) or not len(test):
            raise ValueError("the official split needs tracks marked train and test; "
                             "this library has none, use --split kfold")
        return [Fold("official", train, test, np.flatnonzero(dataset_split == "validation"))]
    _check_fold_count(labels, k)
    rows = np.arange(len(labels))
    if split == "kfold":
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        pairs = splitter.split(rows, labels)
    elif split == "artist":
        missing = int(sum(a is None for a in artists))
        if missing:
            raise ValueError(f"the artist split needs an artist for every track; {missing} "
                             "tracks have none (scan the library with artist metadata)")
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        pairs = splitter.split(rows, labels, groups=artists.astype(str))
    else:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return [Fold(f"fold{i}", train, test) for i, (train, test) in enumerate(pairs)]


def fold_labels(folds: list[Fold], n: int) -> np.ndarray:
    """Per row, the name of the k-fold fold it is tested in."""
    out = np.full(n, None, dtype=object)
    for fold in folds:
        out[fold.test] = fold.name
    return out


def _check_fold_count(labels: np.ndarray, k: int) -> None:
    if k < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {k}")
    values, counts = np.unique(labels.astype(str), return_counts=True)
    if counts.min() < k:
        # str()/int(): numpy scalars' reprs would print as np.str_('rock') in the message.
        rare, fewest = str(values[counts.argmin()]), int(counts.min())
        raise ValueError(f"genre {rare!r} has only {fewest} tracks, fewer than the "
                         f"{k} folds; use fewer folds")
