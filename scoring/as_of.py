"""Win probabilities as the warehouse would have computed them at a past moment: the deals
open then, scored with what had happened before it (scoring.features), calibrated on the
deals that had closed before it. The forecast's backtest uses it, so a month's forecast is
judged on what was known at the month's start.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from scoring.config import ScoringConfig
from scoring.features import features_at
from scoring.learned import fit_logistic
from scoring.model import Scorer, _masked, build_scorer, calibrate, score_features


def open_deals_at(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> pd.DataFrame:
    """Every deal created before `cutoff` and not closed by then, with the cutoff."""
    return con.execute(
        "SELECT source_system, opportunity_id, CAST($cutoff AS TIMESTAMPTZ) AS cutoff "
        "FROM marts.opportunities WHERE created_at < $cutoff "
        "AND (status = 'open' OR closed_at >= $cutoff) ORDER BY 1, 2",
        {"cutoff": cutoff},
    ).df()


def scorer_known_at(con: duckdb.DuckDBPyConnection, scorer: Scorer, cutoff: datetime) -> Scorer:
    """The scorer as it would have stood at `cutoff`: fitted (learned mode) and calibrated
    only on the deals closed before it."""
    features, signals = scorer.training_set
    if len(features):
        known = (pd.to_datetime(features["closed_at"], utc=True) < pd.Timestamp(cutoff)).to_numpy()
        features, signals = features[known], signals[known]
    model = None
    if scorer.model is not None and len(features):
        outcome = features["outcome"]
        config = scorer.config
        if (outcome == "won").sum() >= config.min_won and (
            outcome == "lost"
        ).sum() >= config.min_lost:
            y = (outcome == "won").to_numpy(dtype=float)
            model = fit_logistic(_masked(signals, scorer.used(features)), y)
    then = Scorer(
        scorer.config,
        model,
        training_set=(features.reset_index(drop=True), signals.reset_index(drop=True)),
        uses=scorer.uses,
        sources_with_activities=scorer.sources_with_activities,
    )
    calibrate(con, then)
    return then


def probabilities_at(
    con: duckdb.DuckDBPyConnection, config: ScoringConfig, as_of_end, cutoffs: list[datetime]
) -> dict[datetime, pd.DataFrame]:
    """Per cutoff: the deals open then with their win probability as computed then
    (source_system, opportunity_id, win_probability; NaN where the source had too few
    closed deals to calibrate)."""
    scorer = build_scorer(con, config, as_of_end)
    deals = pd.concat([open_deals_at(con, cutoff) for cutoff in cutoffs], ignore_index=True)
    # One features query for every cutoff (each deal row carries its own), not one each.
    features = features_at(con, deals) if len(deals) else pd.DataFrame()
    out = {}
    for cutoff in cutoffs:
        then = features[features["cutoff"] == pd.Timestamp(cutoff)] if len(features) else features
        scored = score_features(scorer_known_at(con, scorer, cutoff), then, reasons=False)
        out[cutoff] = scored[["source_system", "opportunity_id", "win_probability"]].reset_index(
            drop=True
        )
    return out
