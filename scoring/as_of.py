"""Win probabilities as the warehouse would have computed them at a past moment: deals
open then (those the caller lists), scored with what had happened before it
(scoring.features), calibrated on the deals that had closed before it. The forecast's
backtest uses it, so a month's forecast is judged on what was known at the month's start.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from scoring.config import ScoringConfig
from scoring.deal_sets import DealSet, closed_deals
from scoring.features import FeatureTable
from scoring.learned import fit_logistic
from scoring.model import (
    Scorer,
    _masked,
    calibrate,
    calibrated_grades,
    chunked_scores,
    fit_calibrations,
    learns,
    score_features,
    scores_of,
    sources_with_activities,
)
from scoring.validation import SignalUse
from warehouse.database import table_exists

# A deal open at $cutoff: created before it, and still open or closed since.
OPEN_AT_CUTOFF = "created_at < $cutoff AND (status = 'open' OR closed_at >= $cutoff)"


def stored_signal_uses(con: duckdb.DuckDBPyConnection) -> list[SignalUse]:
    """Which signals each source uses, as today's scoring step decided and stored them
    (marts.scoring_signals): the backtest scores with the same signals, without reading
    every open deal's features a second time to decide again."""
    if not table_exists(con, "marts.scoring_signals"):
        raise MissingScoringError(
            "marts.scoring_signals is missing: the forecast's backtest runs after the "
            "scoring step of the same run (oppwh run) / 请先运行评分"
        )
    rows = con.execute(
        "SELECT source_system, signal, coverage_open, coverage_closed, used, weight, "
        "coalesce(left_out_because, '') FROM marts.scoring_signals ORDER BY 1, 2"
    ).fetchall()
    return [SignalUse(*row) for row in rows]


class MissingScoringError(RuntimeError):
    """The forecast was asked for before today's grades were stored."""


def scorer_known_at(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    training_set: DealSet,
    uses: list[SignalUse],
    activities: set[str],
    cutoff: datetime,
    rule_scores: np.ndarray | None = None,
) -> Scorer:
    """The scorer as it would have stood at `cutoff`: fitted (learned mode, when today's
    closed deals support a model) and calibrated only on the deals closed before it.

    `rule_scores` (rule_scores_of the training set): a closed deal's rules score does not
    depend on the cutoff, so in rules mode each cutoff's calibration is fitted on those
    scores of the deals closed before it instead of scoring them again (six month-starts
    scored half a million closed deals six times: 2.7 s at a million deals)."""
    learned_today = learns(config, training_set)
    closed_at = pd.to_datetime(training_set.deals["closed_at"], utc=True)
    before = (closed_at < pd.Timestamp(cutoff)).to_numpy()
    if not learned_today and rule_scores is not None:
        then = Scorer(config, uses=uses, sources_with_activities=activities)
        then.calibrations = fit_calibrations(
            config, training_set.sources[before], rule_scores[before], training_set.won[before]
        )
        return then
    closed = training_set.where(before)
    then = Scorer(config, training_set=closed, uses=uses, sources_with_activities=activities)
    if learned_today and learns(config, closed):
        x = _masked(closed.signals, then.used_of(closed.sources, closed.known))
        then.model = fit_logistic(x, closed.won.astype(float))
    calibrate(con, then)
    then.training_set = None  # calibrated: the copy of the closed deals is not needed again
    return then


def rule_scores_of(
    config: ScoringConfig, training_set: DealSet, uses: list[SignalUse], activities: set[str]
) -> np.ndarray:
    """Each closed deal's rules score (what calibrate gives it when no model is fitted)."""
    rules = Scorer(config, uses=uses, sources_with_activities=activities)
    used = rules.used_of(training_set.sources, training_set.known)
    return chunked_scores(rules, training_set.signals, used)


# Deal rows one features query reads at most. At the sizes most teams have every cutoff's
# deals come in one query (one pass over the history instead of one per month); at ten
# million deals, one cutoff at a time: its few million rows are a few GB in pandas.
FEATURES_BATCH_ROWS = 2_000_000


def cutoff_batches(rows: dict[datetime, int], limit: int = FEATURES_BATCH_ROWS) -> list[list]:
    """The cutoffs in order, grouped so that each group's deal rows stay within `limit`
    (a cutoff with more rows than that is a group of its own)."""
    batches: list[list] = []
    total = 0
    for cutoff, n in rows.items():
        if batches and total + n <= limit:
            batches[-1].append(cutoff)
            total += n
        else:
            batches.append([cutoff])
            total = n
    return batches


def listed_deals_at(con: duckdb.DuckDBPyConnection, table: str, cutoff: datetime) -> pd.DataFrame:
    """The deals `table` (cutoff, source_system, opportunity_id) lists at `cutoff`, in the
    order of their ids."""
    return con.execute(
        f"SELECT source_system, opportunity_id, cutoff FROM {table} WHERE cutoff = $cutoff "
        "ORDER BY 1, 2",
        {"cutoff": cutoff},
    ).df()


def listed_deal_counts(con: duckdb.DuckDBPyConnection, table: str, cutoffs: list) -> dict:
    """How many deals `table` lists at each cutoff (listed_deals_at's rows)."""
    counts = dict(con.execute(f"SELECT cutoff, count(*) FROM {table} GROUP BY 1").fetchall())
    return {cutoff: counts.get(cutoff, 0) for cutoff in cutoffs}


# The temp table probabilities_at writes: the backtest reads each month's deals from it, so
# six months of millions of open deals wait in DuckDB (which spills), not in pandas.
PROBABILITIES_TABLE = "backtest_probabilities"


def probabilities_at(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    cutoffs: list[datetime],
    listed: str,
    batch_rows: int = FEATURES_BATCH_ROWS,
    reuse: bool = True,
) -> str:
    """Per cutoff: the deals the temp table `listed` lists then (cutoff, source_system,
    opportunity_id: deals open at the cutoff, OPEN_AT_CUTOFF) with their win probability as
    computed then, into the temp table PROBABILITIES_TABLE (cutoff, source_system,
    opportunity_id, win_probability: NULL where the source had too few closed deals to
    calibrate); returns its name. The closed deals the scorers are calibrated on are let go
    on return (`reuse`: read back from scoring's when their inputs are unchanged,
    scoring.past_deals)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {PROBABILITIES_TABLE} (cutoff TIMESTAMPTZ, "
        "source_system VARCHAR, opportunity_id VARCHAR, win_probability DOUBLE)"
    )
    uses = stored_signal_uses(con)
    activities = sources_with_activities(con)
    training_set = closed_deals(con, config, activities, reuse)
    # learned mode fits a model per cutoff, whose scores differ from one cutoff to the next
    rule_scores = (
        None
        if learns(config, training_set)
        else rule_scores_of(config, training_set, uses, activities)
    )
    for batch in cutoff_batches(listed_deal_counts(con, listed, cutoffs), batch_rows):
        scorers = {
            c: scorer_known_at(con, config, training_set, uses, activities, c, rule_scores)
            for c in batch
        }
        deals = pd.concat([listed_deals_at(con, listed, c) for c in batch], ignore_index=True)
        # One features query for the batch's cutoffs (each deal row carries its own), read
        # a chunk at a time; each chunk's deals scored as of their own cutoff.
        for chunk in batch_features(con, deals):
            insert_probabilities(con, chunk_probabilities(scorers, chunk, rule_scores is not None))
        del deals
    return PROBABILITIES_TABLE


def chunk_probabilities(
    scorers: dict[datetime, Scorer], chunk: pd.DataFrame, rules: bool
) -> pd.DataFrame:
    """The win probability of each (deal, cutoff) row of a features chunk, as its cutoff's
    scorer gives it. `rules` (no model fitted): a row's score is the same whichever cutoff's
    scorer computes it, only the calibration differs, so the chunk is scored once."""
    cutoffs = chunk["cutoff"]
    scores = scores_of(next(iter(scorers.values())), chunk)[0] if rules else None
    parts = []
    for cutoff, scorer in scorers.items():
        mask = (cutoffs == pd.Timestamp(cutoff)).to_numpy()
        if not mask.any():
            continue
        if rules:
            part = chunk.loc[mask, ["cutoff", "source_system", "opportunity_id"]]
            part["win_probability"] = calibrated_grades(
                scorer, part["source_system"], scores[mask]
            )[0]
        else:
            part = score_features(scorer, chunk[mask], reasons=False)[PROBABILITY_COLUMNS]
            part.insert(0, "cutoff", cutoffs[mask].reset_index(drop=True))
        parts.append(part)
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["cutoff", *PROBABILITY_COLUMNS])
    )


def insert_probabilities(con: duckdb.DuckDBPyConnection, scored: pd.DataFrame) -> None:
    con.register("scored_df", scored)
    try:
        con.execute(
            f"INSERT INTO {PROBABILITIES_TABLE} SELECT CAST(cutoff AS TIMESTAMPTZ), "
            "source_system, opportunity_id, CAST(win_probability AS DOUBLE) FROM scored_df"
        )
    finally:
        con.unregister("scored_df")


def batch_features(con: duckdb.DuckDBPyConnection, deals: pd.DataFrame):
    """The features of a batch's (deal, cutoff) rows, a chunk at a time."""
    if not len(deals):
        return
    with FeatureTable(con, deals, "backtest_features") as table:
        yield from table.chunks()


PROBABILITY_COLUMNS = ["source_system", "opportunity_id", "win_probability"]
