"""The forecast as one step of the daily job, after the grades: the three marts written in
one transaction (a failed step leaves yesterday's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from forecast.backtest_state import month_fingerprints, store_fingerprints, stored_fingerprints
from forecast.build import (
    ACCURACY_COLUMNS,
    FORECAST_MONTHS,
    TARGET_ATTAINMENT_SQL,
    Months,
    accuracy_rows,
    actual_won,
    deals_at,
    next_month,
    revenue_forecast,
)
from forecast.closing_history import ClosingHistory
from forecast.intervals import SEED
from scoring.as_of import probabilities_at, probabilities_sql
from scoring.config import ScoringConfig
from warehouse.database import READING_MEMORY_LIMIT, Database, memory_lowered, transaction

# The table each frame is written to, with its columns' types.
FORECAST_TYPES = {
    "source_system": "VARCHAR",
    "owner_id": "VARCHAR",
    "owner_name": "VARCHAR",
    "team": "VARCHAR",
    "forecast_month": "DATE",
    "open_deals": "BIGINT",
    "pipeline_amount": "DECIMAL(18,2)",
    "expected_amount": "DECIMAL(18,2)",
    "low_amount": "DECIMAL(18,2)",
    "high_amount": "DECIMAL(18,2)",
    "stddev_amount": "DECIMAL(18,2)",
    "weighted_pipeline_stage": "DECIMAL(18,2)",
}
ACCURACY_TYPES = {
    "source_system": "VARCHAR",
    "month": "DATE",
    "open_deals": "BIGINT",
    "forecast_amount": "DECIMAL(18,2)",
    "low_amount": "DECIMAL(18,2)",
    "high_amount": "DECIMAL(18,2)",
    "baseline_amount": "DECIMAL(18,2)",
    "actual_amount": "DECIMAL(18,2)",
    "actual_from_open_deals": "DECIMAL(18,2)",
    "new_deal_amount": "DECIMAL(18,2)",
    "forecast_error": "DECIMAL(18,2)",
    "baseline_error": "DECIMAL(18,2)",
    "forecast_abs_error_pct": "DOUBLE",
    "baseline_abs_error_pct": "DOUBLE",
    "is_within_interval": "BOOLEAN",
}
assert list(ACCURACY_TYPES) == ACCURACY_COLUMNS


@dataclass(frozen=True)
class ForecastOutcome:
    """What the step wrote, for the run's log."""

    forecast_rows: int
    expected_this_month: float
    accuracy_months: int
    target_rows: int
    months_kept: int = 0

    def line(self) -> str:
        return (
            f"forecast / 预测: {self.forecast_rows} rows, expected this month "
            f"{self.expected_this_month:,.0f}; backtest months {self.accuracy_months} "
            f"({self.months_kept} kept from the last run / 沿用); targets {self.target_rows}"
        )


def past_months(as_of: date, count: int) -> list[date]:
    """The `count` complete months before the as-of month, oldest first."""
    first = as_of.replace(day=1)
    months = []
    for _ in range(count):
        first = (first - pd.Timedelta(days=1)).replace(day=1)
        months.append(first)
    return months[::-1]


def month_rng(month: date) -> np.random.Generator:
    """The intervals' random draws for one month: seeded by the month, so a month computed
    again draws what it drew before, whichever other months are computed with it."""
    return np.random.default_rng([SEED, month.year, month.month])


@dataclass(frozen=True)
class BacktestPlan:
    """Which past months the backtest computes this run (`todo`, each made at its `starts`),
    which keep their rows from the last run (`kept`), every month's fingerprint
    (forecast.backtest_state), and the temp table of the computed months' probabilities."""

    todo: list[date]
    kept: list[date]
    starts: dict[date, datetime]
    fingerprints: dict[date, str]
    probabilities: str | None


@dataclass(frozen=True)
class Backtest:
    """forecast_accuracy's rows for the months computed this run, which months' rows are
    kept from the last run, and every month's fingerprint (forecast.backtest_state)."""

    computed: pd.DataFrame
    kept: list[date]
    fingerprints: dict[date, str]


def plan_backtest(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    as_of: date,
    months_back: int,
    timezone: str,
    reuse: bool = True,
    memory_limit: str | None = None,
) -> BacktestPlan:
    """The months of forecast_accuracy to compute, and the win probabilities of the deals
    open at each one's start, scored with what was known then; a month whose inputs are
    unchanged since the last run (`reuse`) keeps its rows. `memory_limit`, the
    connection's: DuckDB holds less while the deals are scored in pandas
    (warehouse.database.memory_lowered)."""
    firsts = past_months(as_of, months_back)
    starts = {m: Months([m], timezone).start(m) for m in firsts}
    ends = [Months([m], timezone).start(next_month(m)) for m in firsts]
    fingerprints = month_fingerprints(con, firsts, ends, config, timezone)
    stored = stored_fingerprints(con) if reuse else {}
    kept = [m for m in firsts if stored.get(m) == fingerprints[m]]
    todo = [m for m in firsts if m not in kept]
    probabilities = None
    if todo:
        # The closed deals the scorers learn from and the open deals being scored are held in
        # pandas while DuckDB builds their features: it holds less meanwhile.
        with memory_lowered(con, memory_limit, READING_MEMORY_LIMIT):
            probabilities = probabilities_at(con, config, [starts[m] for m in todo], reuse=reuse)
    return BacktestPlan(todo, kept, starts, fingerprints, probabilities)


def backtest(
    con: duckdb.DuckDBPyConnection,
    plan: BacktestPlan,
    history: ClosingHistory,
    timezone: str,
    memory_limit: str | None = None,
) -> Backtest:
    """forecast_accuracy's rows of the plan's months: each past month's forecast, made at
    its start from what was known then, next to what was won during it."""
    first_deals = dict(
        con.execute(
            "SELECT source_system, min(created_at) FROM marts.opportunities GROUP BY 1"
        ).fetchall()
    )
    rows = []
    for month in plan.todo:
        cutoff = plan.starts[month]
        sources = sorted(s for s, first in first_deals.items() if first < cutoff)
        if not sources:
            continue
        window = Months([month], timezone)
        deals, shares = deals_at(
            con,
            probabilities_sql(plan.probabilities),
            cutoff,
            window,
            ahead_from=month,
            current=False,
            history=history,
            memory_limit=memory_limit,
        )
        actual = actual_won(con, cutoff, window.start(next_month(month)))
        with memory_lowered(con, memory_limit):
            rows += accuracy_rows(month, deals, shares, actual, sources, month_rng(month))
    return Backtest(pd.DataFrame(rows, columns=ACCURACY_COLUMNS), plan.kept, plan.fingerprints)


def _casts(types: dict) -> str:
    return ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())


def _replace(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, types: dict) -> None:
    con.register("frame_df", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT {_casts(types)} FROM frame_df")
    finally:
        con.unregister("frame_df")


def _replace_accuracy(con: duckdb.DuckDBPyConnection, result: Backtest) -> None:
    """marts.forecast_accuracy: the kept months' rows as they were (no round trip through
    floats), and the months computed now, in month and source order."""
    if result.kept:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE kept_accuracy AS SELECT * FROM marts.forecast_accuracy "
            "WHERE month IN (SELECT unnest(CAST(? AS DATE[])))",
            [result.kept],
        )
    con.register("frame_df", result.computed)
    try:
        kept = "SELECT * FROM kept_accuracy UNION ALL " if result.kept else ""
        con.execute(
            f"CREATE OR REPLACE TABLE marts.forecast_accuracy AS SELECT * FROM ({kept}"
            f"SELECT {_casts(ACCURACY_TYPES)} FROM frame_df) ORDER BY month, source_system"
        )
    finally:
        con.unregister("frame_df")
    store_fingerprints(con, result.fingerprints)


def refresh_forecast(
    db: Database,
    config: ScoringConfig,
    as_of: date,
    as_of_end: datetime,
    timezone: str,
    months_back: int,
    reuse: bool = True,
) -> ForecastOutcome:
    """Write marts.revenue_forecast, marts.forecast_accuracy and marts.target_attainment
    (`reuse` False: every backtest month computed again, as `oppwh run --full-refresh`)."""
    months = Months.starting(as_of.replace(day=1), FORECAST_MONTHS, timezone)
    memory_limit = db.limits.memory_limit if db.limits else None
    with db.connect() as con:
        plan = plan_backtest(con, config, as_of, months_back, timezone, reuse, memory_limit)
        # read after the backtest's scoring (which holds the closed deals in pandas), once
        # for today and every month computed
        with memory_lowered(con, memory_limit, READING_MEMORY_LIMIT):
            history = ClosingHistory.read(con, as_of_end)
        today = (
            "SELECT source_system, opportunity_id, win_probability FROM marts.opportunity_priority"
        )
        deals, shares = deals_at(
            con, today, as_of_end, months, as_of, True, history, memory_limit=memory_limit
        )
        with memory_lowered(con, memory_limit):
            forecast = revenue_forecast(deals, shares, months)
        del deals, shares
        accuracy = backtest(con, plan, history, timezone, memory_limit)
        del history
        with transaction(con):
            _replace(con, "revenue_forecast", forecast, FORECAST_TYPES)
            _replace_accuracy(con, accuracy)
            con.execute(
                f"CREATE OR REPLACE TABLE marts.target_attainment AS {TARGET_ATTAINMENT_SQL}",
                {
                    "first_month": months.firsts[0],
                    "last_month": months.firsts[-1],
                    "tz": timezone,
                },
            )
        targets = con.execute("SELECT count(*) FROM marts.target_attainment").fetchone()[0]
        accuracy_rows_written = con.execute(
            "SELECT count(*) FROM marts.forecast_accuracy"
        ).fetchone()[0]
    this_month = forecast[forecast["forecast_month"] == months.firsts[0]]["expected_amount"].sum()
    return ForecastOutcome(
        len(forecast), float(this_month), accuracy_rows_written, targets, len(accuracy.kept)
    )


__all__ = ["refresh_forecast", "next_month"]
