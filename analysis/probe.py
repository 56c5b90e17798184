"""The MARBLE-style probe: one hidden layer of 512, ReLU, dropout 0.2, Adam, early stopping
on validation accuracy, in torch.

It is the last step of the benchmark pipeline, so its inputs are already imputed and
standardised on the training rows (`models.build_pipeline`). Early stopping watches a
validation set: the dataset's validation part when the caller passes one as `eval_set`
(MARBLE's protocol), else a stratified tenth of the training rows held out here. Training
is deterministic for a seed on one device: seeded initialisation and shuffling, and torch's
deterministic algorithms while it runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

HELD_OUT = 0.1  # of the training rows, for early stopping when no validation part is given


class ProbeClassifier(ClassifierMixin, BaseEstimator):
    """Scikit-learn classifier around a one-hidden-layer torch MLP; `classes_` are the
    labels seen in `fit`. `device` is `auto` (CUDA, else MPS, else CPU, as the extractors
    pick) or a torch device name."""

    def __init__(self, hidden: int = 512, dropout: float = 0.2, learning_rate: float = 1e-3,
                 batch_size: int = 64, max_epochs: int = 200, patience: int = 10,
                 seed: int = 0, device: str = "auto") -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.seed = seed
        self.device = device

    def fit(self, X, y, sample_weight=None, eval_set=None) -> ProbeClassifier:
        """Train on (X, y) until validation accuracy has not improved for `patience`
        epochs, keeping the best epoch's weights. `eval_set` = (X_val, y_val)."""
        from mfs.analysis.models import SMALL_MATRIX_CELLS
        from mfs.extractors.device import pick_device, torch_threads

        X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        weights = (np.ones(len(y), np.float32) if sample_weight is None
                   else np.asarray(sample_weight, np.float32))
        if eval_set is None:
            fit_rows, val_rows = train_test_split(
                np.arange(len(y)), test_size=HELD_OUT, stratify=codes, random_state=self.seed)
            X_val, val_codes = X[val_rows], codes[val_rows]
            X, codes, weights = X[fit_rows], codes[fit_rows], weights[fit_rows]
        else:
            X_val = np.asarray(eval_set[0], dtype=np.float32)
            val_codes = np.searchsorted(self.classes_, np.asarray(eval_set[1]))
        device = pick_device(self.device)
        # One CPU thread on small inputs: its batches are too small to split, and on a busy
        # machine extra threads spin-wait (as models.xgboost_threads finds for XGBoost).
        threads = 1 if X.size < SMALL_MATRIX_CELLS else None
        with _deterministic(device), torch_threads(device, threads):
            self.network_, self.epochs_, self.best_score_ = self._train(
                device, X, codes, weights, X_val, val_codes)
        self.device_ = str(device)
        return self

    def _train(self, device: torch.device, X: np.ndarray, codes: np.ndarray,
               weights: np.ndarray, X_val: np.ndarray,
               val_codes: np.ndarray) -> tuple[torch.nn.Module, int, float]:
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        network = torch.nn.Sequential(
            torch.nn.Linear(X.shape[1], self.hidden), torch.nn.ReLU(),
            torch.nn.Dropout(self.dropout), torch.nn.Linear(self.hidden, len(self.classes_)),
        ).to(device)
        optimiser = torch.optim.Adam(network.parameters(), lr=self.learning_rate, foreach=True)
        inputs, targets = torch.from_numpy(X).to(device), torch.from_numpy(codes).to(device)
        scale = torch.from_numpy(weights / weights.mean()).to(device)
        val_inputs = torch.from_numpy(X_val).to(device)
        val_targets = torch.from_numpy(val_codes).to(device)
        best, best_state, best_epoch = -1.0, None, 0
        for epoch in range(1, self.max_epochs + 1):
            network.train()
            for batch in torch.randperm(len(X), generator=generator).split(self.batch_size):
                batch = batch.to(device)
                loss = torch.nn.functional.cross_entropy(
                    network(inputs[batch]), targets[batch], reduction="none")
                optimiser.zero_grad()
                (loss * scale[batch]).mean().backward()
                optimiser.step()
            network.eval()
            with torch.no_grad():
                score = (network(val_inputs).argmax(1) == val_targets).float().mean().item()
            if score > best:  # ties keep the earlier epoch
                best, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            elif epoch - best_epoch >= self.patience:
                break
        network.load_state_dict(best_state)
        return network.eval(), best_epoch, best

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        with torch.no_grad():
            inputs = torch.from_numpy(np.asarray(X, dtype=np.float32)).to(self.device_)
            return torch.softmax(self.network_(inputs), dim=1).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Torch's deterministic algorithms and a private random state for the block, then the
    caller's again. cuBLAS needs a fixed workspace for reproducible matmuls (set before
    its first use)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    # The probe seeds torch's global generators (dropout draws from them); forking keeps
    # the caller's random state as it was.
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        torch.use_deterministic_algorithms(before)
