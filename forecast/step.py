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
    OPEN_DEALS_TABLE,
    TARGET_ATTAINMENT_SQL,
    Months,
    accuracy_rows,
    actual_won,
    deals_at,
    forecast_probability,
    next_month,
    revenue_forecast,
)
from forecast.closing_history import ClosingHistory
from forecast.intervals import SEED
from scoring.as_of import OPEN_AT_CUTOFF, PROBABILITIES_TABLE, probabilities_at
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
    which keep their rows from the last run (`kept`), and every month's fingerprint
    (forecast.backtest_state)."""

    todo: list[date]
    kept: list[date]
    starts: dict[date, datetime]
    fingerprints: dict[date, str]


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
) -> BacktestPlan:
    """The months of forecast_accuracy to compute: a month whose inputs are unchanged since
    the last run (`reuse`) keeps its rows."""
    firsts = past_months(as_of, months_back)
    starts = {m: Months([m], timezone).start(m) for m in firsts}
    ends = [Months([m], timezone).start(next_month(m)) for m in firsts]
    fingerprints = month_fingerprints(con, firsts, ends, config, timezone)
    stored = stored_fingerprints(con) if reuse else {}
    kept = [m for m in firsts if stored.get(m) == fingerprints[m]]
    return BacktestPlan([m for m in firsts if m not in kept], kept, starts, fingerprints)


# The temp table of the deals whose win probability a computed month needs (cutoff,
# source_system, opportunity_id): scoring.as_of.probabilities_at scores these alone.
NEEDED_TABLE = "backtest_needed"
# Every deal open at a cutoff, before it is scored (deals_at reads the probability; the
# stage's default stands in until the deals with a chance of closing are scored).
UNSCORED_SQL = (
    "SELECT source_system, opportunity_id, CAST(NULL AS DOUBLE) AS win_probability "
    f"FROM marts.opportunities WHERE {OPEN_AT_CUTOFF}"
)


@dataclass(frozen=True)
class MonthDeals:
    """A computed month's deals as its row needs them: per source the deals open at its
    start (`open_deals`); the ones with a chance of closing in the month (`deals`: source,
    amount, stage probability, in the order of their ids, with their `shares` of the
    month), whose win probabilities are worked out afterwards, all months' together; and
    what was won during it (`actual`: actual_won's)."""

    month: date
    cutoff: datetime
    sources: list[str]
    open_deals: dict[str, int]
    deals: pd.DataFrame
    shares: np.ndarray
    actual: pd.DataFrame


def month_deals(
    con: duckdb.DuckDBPyConnection,
    plan: BacktestPlan,
    history: ClosingHistory,
    timezone: str,
    memory_limit: str | None = None,
) -> list[MonthDeals]:
    """Each computed month's deals as they stood at its start (deals_at), timed first: a
    deal with no share of the month adds nothing to its figures whatever its probability,
    so only the others are listed in NEEDED_TABLE to be scored (at a million deals two in
    five; scoring every deal open at six month-starts was half the backtest)."""
    first_deals = dict(
        con.execute(
            "SELECT source_system, min(created_at) FROM marts.opportunities GROUP BY 1"
        ).fetchall()
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {NEEDED_TABLE} (cutoff TIMESTAMPTZ, "
        "source_system VARCHAR, opportunity_id VARCHAR)"
    )
    months = []
    for month in plan.todo:
        cutoff = plan.starts[month]
        sources = sorted(s for s, first in first_deals.items() if first < cutoff)
        if not sources:
            continue
        window = Months([month], timezone)
        deals, shares = deals_at(
            con,
            UNSCORED_SQL,
            cutoff,
            window,
            ahead_from=month,
            current=False,
            history=history,
            memory_limit=memory_limit,
        )
        actual = actual_won(con, cutoff, window.start(next_month(month)))
        needed = np.flatnonzero(shares[:, 0] > 0)
        list_needed(con, cutoff, needed)
        counts = deals["source_system"].value_counts()
        months.append(
            MonthDeals(
                month,
                cutoff,
                sources,
                {str(k): int(v) for k, v in counts.items()},
                # the sources as categories: at ten million deals six months of these
                # rows wait together for their probabilities
                deals[["source_system", "amount", "stage_probability"]]
                .iloc[needed]
                .astype({"source_system": "category"})
                .reset_index(drop=True),
                shares[needed, :1],
                actual,
            )
        )
        del deals, shares
    return months


def list_needed(con: duckdb.DuckDBPyConnection, cutoff: datetime, positions: np.ndarray) -> None:
    """Add to NEEDED_TABLE the deals at `positions` of deals_at's frame (its rows are the
    deals of OPEN_DEALS_TABLE in the order of their ids)."""
    con.register("needed_df", pd.DataFrame({"position": positions.astype(np.int64)}))
    try:
        con.execute(
            f"INSERT INTO {NEEDED_TABLE} SELECT CAST($cutoff AS TIMESTAMPTZ), "
            "d.source_system, d.opportunity_id FROM (SELECT source_system, opportunity_id, "
            "row_number() OVER (ORDER BY source_system, opportunity_id) - 1 AS position "
            f"FROM {OPEN_DEALS_TABLE}) AS d JOIN needed_df USING (position)",
            {"cutoff": cutoff},
        )
    finally:
        con.unregister("needed_df")


def needed_probabilities(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> np.ndarray:
    """The win probabilities of one cutoff's listed deals, in the order of their ids (NaN:
    the source had too few closed deals to calibrate)."""
    return (
        con.execute(
            f"SELECT p.win_probability FROM {NEEDED_TABLE} AS n LEFT JOIN {PROBABILITIES_TABLE} "
            "AS p USING (cutoff, source_system, opportunity_id) WHERE n.cutoff = $cutoff "
            "ORDER BY n.source_system, n.opportunity_id",
            {"cutoff": cutoff},
        )
        .df()["win_probability"]
        .to_numpy(dtype=float, na_value=np.nan)
    )


def backtest(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    plan: BacktestPlan,
    months: list[MonthDeals],
    reuse: bool = True,
    memory_limit: str | None = None,
) -> Backtest:
    """forecast_accuracy's rows of the plan's months: each past month's forecast, made at
    its start from what was known then (its deals' win probabilities scored with what
    had happened before it, scoring.as_of), next to what was won during it."""
    if months:
        # The closed deals the scorers learn from are held in pandas while DuckDB builds
        # the features: it holds less meanwhile (warehouse.database.memory_lowered).
        with memory_lowered(con, memory_limit, READING_MEMORY_LIMIT):
            probabilities_at(con, config, [m.cutoff for m in months], NEEDED_TABLE, reuse=reuse)
    rows = []
    for m in months:
        deals = m.deals.assign(win_probability=needed_probabilities(con, m.cutoff))
        deals["probability"] = forecast_probability(deals)
        with memory_lowered(con, memory_limit):
            rows += accuracy_rows(
                m.month, deals, m.shares, m.actual, m.sources, month_rng(m.month), m.open_deals
            )
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
        plan = plan_backtest(con, config, as_of, months_back, timezone, reuse)
        # read once for today and every month computed
        with memory_lowered(con, memory_limit, READING_MEMORY_LIMIT):
            history = ClosingHistory.read(con, as_of_end, cutoffs=1 + len(plan.todo))
        today = (
            "SELECT source_system, opportunity_id, win_probability FROM marts.opportunity_priority"
        )
        deals, shares = deals_at(
            con, today, as_of_end, months, as_of, True, history, memory_limit=memory_limit
        )
        with memory_lowered(con, memory_limit):
            forecast = revenue_forecast(deals, shares, months)
        del deals, shares
        computed = month_deals(con, plan, history, timezone, memory_limit)
        del history  # not while the closed deals are read to be learned from
        accuracy = backtest(con, config, plan, computed, reuse, memory_limit)
        del computed
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
