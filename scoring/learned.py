"""Learned mode: a logistic regression on the same signals, fitted on past deals.

Fitted by iteratively reweighted least squares with a small ridge penalty, in numpy: the
model is 14 numbers, and a library for it would be a heavier dependency than the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogisticModel:
    coefficients: np.ndarray  # one per signal
    intercept: float
    means: np.ndarray  # signal means on the training deals, for contributions

    def logit(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coefficients + self.intercept

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Each signal's push on the logit against an average deal (for reasons)."""
        return (x - self.means) * self.coefficients


def fit_logistic(
    x: np.ndarray, y: np.ndarray, ridge: float = 1.0, iterations: int = 50
) -> LogisticModel:
    n, k = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(k + 1)
    penalty = np.eye(k + 1) * ridge
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        w = np.clip(p * (1 - p), 1e-6, None)
        gradient = design.T @ (y - p) - penalty @ beta
        hessian = design.T @ (design * w[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return LogisticModel(beta[:-1], float(beta[-1]), x.mean(axis=0))
