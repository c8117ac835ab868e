"""Score open deals, calibrate on closed ones, and measure the grades (AUC, lift).

Rules mode (the default) needs no training. Learned mode fits on past deals with the
features they had before they closed, and only when there are enough of them; otherwise
the run falls back to the rules and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from scoring.config import SIGNALS, ScoringConfig
from scoring.features import closed_deal_cutoffs, features_at, open_deal_cutoffs
from scoring.learned import LogisticModel, fit_logistic
from scoring.signals import (
    compute_signals,
    grades_for,
    rule_contributions,
    scores_from_contributions,
    top_reasons,
)

GRADES = ("A", "B", "C", "D")


@dataclass
class Scorer:
    """What turns signals into scores: the rules, or a fitted model."""

    config: ScoringConfig
    model: LogisticModel | None = None
    note: str = ""
    # (features, signals) of the closed deals, when building the scorer already computed
    # them (learned mode): calibration reuses them instead of querying again.
    training_set: tuple | None = None

    @property
    def model_version(self) -> str:
        if self.model is None:
            return self.config.model_version
        return f"learned-{self.config.content_hash}"

    def score(self, signals: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Scores 0-100 and per-signal contributions (for reasons)."""
        if self.model is None:
            contributions = rule_contributions(signals, self.config)
            return scores_from_contributions(contributions), contributions
        x = signals.to_numpy(dtype=float)
        scores = np.round(self.model.probability(x) * 100, 1)
        contributions = pd.DataFrame(
            self.model.contributions(x), columns=list(SIGNALS), index=signals.index
        )
        return scores, contributions * 10  # logit units -> about points, for the reason threshold


def closed_deal_training_set(con: duckdb.DuckDBPyConnection, config: ScoringConfig):
    """Closed deals with their features as of the cutoff before the close, and outcomes."""
    cutoffs = closed_deal_cutoffs(con, config.horizon_days)
    if cutoffs.empty:
        return cutoffs, pd.DataFrame(columns=list(SIGNALS))
    features = features_at(con, cutoffs[["source_system", "opportunity_id", "cutoff"]])
    features = features.merge(
        cutoffs[["source_system", "opportunity_id", "outcome", "closed_at"]],
        on=["source_system", "opportunity_id"],
    )
    return features, compute_signals(features, config)


def build_scorer(con: duckdb.DuckDBPyConnection, config: ScoringConfig) -> Scorer:
    """The rules, or in learned mode a model fitted on enough past deals."""
    if config.mode != "learned":
        return Scorer(config, note="rules mode (scoring.yml)")
    features, signals = closed_deal_training_set(con, config)
    won = int((features.get("outcome") == "won").sum()) if len(features) else 0
    lost = int((features.get("outcome") == "lost").sum()) if len(features) else 0
    if won < config.min_won or lost < config.min_lost:
        return Scorer(
            config,
            training_set=(features, signals),
            note=(
                f"learned mode needs at least {config.min_won} won and {config.min_lost} lost "
                f"deals; found {won} won and {lost} lost, so the rules are used "
                f"/ 已成交样本不足，使用规则评分"
            ),
        )
    y = (features["outcome"] == "won").to_numpy(dtype=float)
    model = fit_logistic(signals.to_numpy(dtype=float), y)
    return Scorer(
        config,
        model,
        note=f"learned mode: fitted on {won} won and {lost} lost deals",
        training_set=(features, signals),
    )


def score_open_deals(con: duckdb.DuckDBPyConnection, scorer: Scorer, as_of_end) -> pd.DataFrame:
    """One row per open deal: score, grade, reasons."""
    cutoffs = open_deal_cutoffs(con, as_of_end)
    columns = ["source_system", "opportunity_id", "score", "grade", "reasons"]
    if cutoffs.empty:
        return pd.DataFrame(columns=columns)
    features = features_at(con, cutoffs)
    signals = compute_signals(features, scorer.config)
    scores, contributions = scorer.score(signals)
    out = features[["source_system", "opportunity_id"]].copy()
    out["score"] = scores
    out["grade"] = grades_for(scores, scorer.config)
    out["reasons"] = top_reasons(features, contributions)
    return out


def calibrate(con: duckdb.DuckDBPyConnection, scorer: Scorer) -> pd.DataFrame:
    """Past deals scored as they stood before they closed: one row per deal with its grade,
    outcome and period (quarter of the close). In learned mode only the later 30% of deals
    (by close), which the model was not fitted on, are graded."""
    features, signals = scorer.training_set or closed_deal_training_set(con, scorer.config)
    if features.empty:
        return pd.DataFrame(
            columns=["source_system", "opportunity_id", "score", "grade", "won", "period"]
        )
    scorer_for_backtest = scorer
    keep = np.ones(len(features), dtype=bool)
    if scorer.model is not None:
        order = features["closed_at"].rank(method="first").to_numpy()
        split = order > 0.7 * len(features)
        train = ~split
        y = (features["outcome"] == "won").to_numpy(dtype=float)
        model = fit_logistic(signals.to_numpy(dtype=float)[train], y[train])
        scorer_for_backtest = Scorer(scorer.config, model)
        keep = split
    scores, _ = scorer_for_backtest.score(signals)
    out = features[["source_system", "opportunity_id"]].copy()
    out["score"] = scores
    out["grade"] = grades_for(scores, scorer.config)
    out["won"] = (features["outcome"] == "won").to_numpy()
    closed = pd.to_datetime(features["closed_at"], utc=True)
    out["period"] = closed.dt.year.astype(str) + "-Q" + closed.dt.quarter.astype(str)
    return out[keep].reset_index(drop=True)


def calibration_table(graded: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Win rate per grade, and lift over the base rate, overall ('all') and per quarter."""
    rows = []
    for period, group in [("all", graded), *graded.groupby("period")]:
        base = group["won"].mean() if len(group) else np.nan
        for grade in GRADES:
            deals = group[group["grade"] == grade]
            n, won = len(deals), int(deals["won"].sum())
            rate = won / n if n else np.nan
            rows.append(
                {
                    "grade": grade,
                    "period": period,
                    "closed_deals": n,
                    "won_deals": won,
                    "win_rate": round(rate, 4) if n else None,
                    "base_win_rate": round(base, 4) if len(group) else None,
                    "lift": round(rate / base, 3) if n and base else None,
                    "model_version": model_version,
                }
            )
    return pd.DataFrame(rows)


def auc(scores: np.ndarray, won: np.ndarray) -> float:
    """Probability that a random won deal scored above a random lost one (ties count half)."""
    won = np.asarray(won, dtype=bool)
    if won.all() or not won.any():
        return float("nan")
    ranks = pd.Series(scores).rank().to_numpy()
    n_won, n_lost = won.sum(), (~won).sum()
    return float((ranks[won].sum() - n_won * (n_won + 1) / 2) / (n_won * n_lost))
