"""The forecast as one step of the daily job, after the grades: the three marts written in
one transaction (a failed step leaves yesterday's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from forecast.build import (
    ACCURACY_COLUMNS,
    FORECAST_MONTHS,
    TARGET_ATTAINMENT_SQL,
    Months,
    accuracy_rows,
    deals_at,
    next_month,
    revenue_forecast,
)
from forecast.intervals import SEED
from scoring.as_of import probabilities_at
from scoring.config import ScoringConfig
from warehouse.database import Database, transaction

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

    def line(self) -> str:
        return (
            f"forecast / 预测: {self.forecast_rows} rows, expected this month "
            f"{self.expected_this_month:,.0f}; backtest months {self.accuracy_months}; "
            f"targets {self.target_rows}"
        )


def past_months(as_of: date, count: int) -> list[date]:
    """The `count` complete months before the as-of month, oldest first."""
    first = as_of.replace(day=1)
    months = []
    for _ in range(count):
        first = (first - pd.Timedelta(days=1)).replace(day=1)
        months.append(first)
    return months[::-1]


def backtest(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    as_of_end: datetime,
    as_of: date,
    months_back: int,
    timezone: str,
) -> pd.DataFrame:
    """forecast_accuracy: each past month's forecast, made at its start from what was known."""
    firsts = past_months(as_of, months_back)
    starts = {m: Months([m], timezone).start(m) for m in firsts}
    probabilities = probabilities_at(con, config, as_of_end, list(starts.values()))
    first_deals = dict(
        con.execute(
            "SELECT source_system, min(created_at) FROM marts.opportunities GROUP BY 1"
        ).fetchall()
    )
    rng = np.random.default_rng(SEED)
    rows = []
    for month in firsts:
        cutoff = starts[month]
        sources = sorted(s for s, first in first_deals.items() if first < cutoff)
        if not sources:
            continue
        window = Months([month], timezone)
        deals, shares = deals_at(
            con, probabilities[cutoff], cutoff, window, ahead_from=month, current=False
        )
        rows += accuracy_rows(con, month, deals, shares, window, sources, rng)
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def _replace(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, types: dict) -> None:
    columns = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
    con.register("frame_df", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT {columns} FROM frame_df")
    finally:
        con.unregister("frame_df")


def refresh_forecast(
    db: Database,
    config: ScoringConfig,
    as_of: date,
    as_of_end: datetime,
    timezone: str,
    months_back: int,
) -> ForecastOutcome:
    """Write marts.revenue_forecast, marts.forecast_accuracy and marts.target_attainment."""
    months = Months.starting(as_of.replace(day=1), FORECAST_MONTHS, timezone)
    with db.connect() as con:
        today = con.execute(
            "SELECT source_system, opportunity_id, win_probability FROM marts.opportunity_priority"
        ).df()
        deals, shares = deals_at(con, today, as_of_end, months, ahead_from=as_of, current=True)
        forecast = revenue_forecast(deals, shares, months)
        accuracy = backtest(con, config, as_of_end, as_of, months_back, timezone)
        with transaction(con):
            _replace(con, "revenue_forecast", forecast, FORECAST_TYPES)
            _replace(con, "forecast_accuracy", accuracy, ACCURACY_TYPES)
            con.execute(
                f"CREATE OR REPLACE TABLE marts.target_attainment AS {TARGET_ATTAINMENT_SQL}",
                {
                    "first_month": months.firsts[0],
                    "last_month": months.firsts[-1],
                    "tz": timezone,
                },
            )
        targets = con.execute("SELECT count(*) FROM marts.target_attainment").fetchone()[0]
    this_month = forecast[forecast["forecast_month"] == months.firsts[0]]["expected_amount"].sum()
    return ForecastOutcome(len(forecast), float(this_month), len(accuracy), targets)


__all__ = ["refresh_forecast", "next_month"]
