"""The 80% interval of an amount that is the sum of deals each won or lost on its own.

A few deals: simulated (a fixed seed, so a rerun gives the same figures). Many deals: the
normal approximation, which is then as good and costs nothing. Either way the interval is
widened, where needed, to hold the expected amount: with one deal at a 5% chance the 10th
and 90th percentiles are both 0, and an interval that excludes the expected figure would
only confuse.
"""

from __future__ import annotations

import numpy as np

SIMULATIONS = 2000
# Groups of up to this many deals are simulated; larger ones use the normal approximation.
SIMULATE_UP_TO = 200
LOW_QUANTILE, HIGH_QUANTILE = 0.10, 0.90
Z_80 = 1.2815515655446004  # the normal's 90th percentile
SEED = 20261202


def interval(
    amounts: np.ndarray, chances: np.ndarray, rng: np.random.Generator
) -> tuple[float, float]:
    """(low, high): the 10th and 90th percentile of Σ amount x won, each deal won with its
    chance, widened to hold the expected amount."""
    amounts = np.nan_to_num(np.asarray(amounts, dtype=float))
    chances = np.clip(np.nan_to_num(np.asarray(chances, dtype=float)), 0.0, 1.0)
    expected = float(amounts @ chances)
    if not len(amounts):
        return 0.0, 0.0
    if len(amounts) <= SIMULATE_UP_TO:
        totals = (rng.random((SIMULATIONS, len(amounts))) < chances) @ amounts
        low, high = np.quantile(totals, [LOW_QUANTILE, HIGH_QUANTILE])
    else:
        sd = float(np.sqrt(np.sum(amounts**2 * chances * (1 - chances))))
        low, high = max(0.0, expected - Z_80 * sd), min(amounts.sum(), expected + Z_80 * sd)
    return min(float(low), expected), max(float(high), expected)


def standard_deviation(amounts: np.ndarray, chances: np.ndarray) -> float:
    """The spread of Σ amount x won: what lets a reader combine groups (variances add)."""
    amounts = np.nan_to_num(np.asarray(amounts, dtype=float))
    chances = np.clip(np.nan_to_num(np.asarray(chances, dtype=float)), 0.0, 1.0)
    return float(np.sqrt(np.sum(amounts**2 * chances * (1 - chances))))
