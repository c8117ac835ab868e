"""Scoring as one step of the daily job: grade the open deals, store the grades and the
validation, and summarise what happened (the Dagster asset only reports the summary)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from scoring.config import ScoringConfig
from scoring.model import GRADES, ScoringRun, auc, score_and_calibrate
from scoring.store import save_priority
from warehouse.database import READING_MEMORY_LIMIT, Database, memory_lowered


@dataclass
class GradingOutcome:
    """What one scoring step did, for the run's log and the asset's metadata."""

    run: ScoringRun
    today: pd.DataFrame  # marts.opportunity_priority as saved
    history_rows: int
    grade_counts: dict[str, int]
    backtest_auc: float | None  # over every source's past deals together

    def grade_line(self) -> str:
        area = "nan" if self.backtest_auc is None else f"{self.backtest_auc:.3f}"
        counts = ", ".join(f"{g} {n}" for g, n in self.grade_counts.items())
        return f"grades / 评级: {counts}; backtest AUC {area}"


def grade_counts(today: pd.DataFrame) -> dict[str, int]:
    counts = today["grade"].value_counts().reindex(list(GRADES), fill_value=0)
    return {g: int(n) for g, n in counts.items()}


def pooled_auc(graded: pd.DataFrame) -> float | None:
    """AUC of every past deal's score against its outcome (None when there are none)."""
    if not len(graded):
        return None
    area = auc(graded["score"].to_numpy(), graded["won"].to_numpy())
    return None if area != area else float(area)


def grade_warehouse(
    db: Database,
    config: ScoringConfig,
    as_of: date,
    as_of_end: datetime,
    before_commit: Callable[[], None] | None = None,
    reuse: bool = True,
) -> GradingOutcome:
    """Score, calibrate and store the grades of the warehouse as of `as_of` (`reuse` False,
    as `oppwh run --full-refresh`: the past deals' signals computed again, not read back)."""
    memory_limit = db.limits.memory_limit if db.limits else None
    with db.connect() as con:
        run = score_and_calibrate(con, config, as_of_end, reuse)
        # every open deal's grade and reasons wait in pandas while DuckDB writes them
        with memory_lowered(con, memory_limit, READING_MEMORY_LIMIT):
            today = save_priority(
                con,
                run.scored,
                run.calibration,
                as_of,
                run.scorer.model_version,
                config.trend_threshold,
                before_commit=before_commit,
                signals=run.signals,
                validation=run.validation,
            )
        history_rows = con.execute(
            "SELECT count(*) FROM marts.opportunity_priority_history"
        ).fetchone()[0]
    return GradingOutcome(run, today, history_rows, grade_counts(today), pooled_auc(run.graded))


def backtest(db: Database, config: ScoringConfig, as_of_end: datetime) -> ScoringRun:
    """`oppwh score --backtest`: the same scoring path, on a read-only connection."""
    with db.connect(read_only=True) as con:
        return score_and_calibrate(con, config, as_of_end)
