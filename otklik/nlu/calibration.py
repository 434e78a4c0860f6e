"""A linear SVM with temperature-scaled softmax probabilities (Guo et al., 2017).

The temperature is a single parameter fitted on out-of-fold decision scores, so it is robust on the
small data of a pack and far cheaper than one-vs-rest sigmoid calibration.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

__all__ = ["TemperatureScaledSVC", "softmax"]


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of `scores * temperature`."""
    scaled = scores * temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


def _fit_temperature(scores: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the true classes."""

    def nll(log_t: float) -> float:
        probabilities = softmax(scores, float(np.exp(log_t)))
        picked = probabilities[np.arange(len(targets)), targets]
        return float(-np.log(np.clip(picked, 1e-12, None)).mean())

    found = minimize_scalar(nll, bounds=(-3.0, 5.0), method="bounded")
    return float(np.exp(found.x))


class TemperatureScaledSVC(ClassifierMixin, BaseEstimator):
    """LinearSVC (one-vs-rest, balanced class weights) + one softmax temperature fitted by cross-validation."""

    def __init__(self, C: float = 0.5, folds: int = 5, random_state: int = 0) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def _svm(self) -> LinearSVC:
        return LinearSVC(C=self.C, class_weight="balanced")

    def fit(self, X: Any, y: Any) -> TemperatureScaledSVC:
        """Fit the SVM on all data and the temperature on out-of-fold scores."""
        labels = np.asarray(y)
        self.classes_ = np.unique(labels)
        targets = np.searchsorted(self.classes_, labels)
        smallest = int(np.bincount(targets).min())
        folds = max(2, min(self.folds, smallest))
        if smallest >= 2:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            scores = cross_val_predict(self._svm(), X, labels, cv=splitter, method="decision_function")
            self.temperature_ = _fit_temperature(np.asarray(scores), targets)
        else:
            self.temperature_ = 1.0
        self.svm_ = self._svm().fit(X, labels)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw one-vs-rest SVM scores."""
        scores = np.asarray(self.svm_.decision_function(X))
        return scores if scores.ndim == 2 else np.column_stack([-scores, scores])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities (columns in `classes_` order)."""
        return softmax(self.decision_function(X), self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class per row."""
        result: np.ndarray = self.classes_[np.argmax(self.decision_function(X), axis=1)]
        return result
