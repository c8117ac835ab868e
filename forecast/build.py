"""The forecast marts: revenue_forecast (the months ahead), forecast_accuracy (the same
forecast made at the start of each past month from what was known then, next to what was
won) and target_attainment (targets against won, pipeline and forecast).

One path serves today and the past: `deals_at` takes the deals open at a cutoff with their
win probability as computed then, and reads their stage, age and expected close date as
they stood at the cutoff; the timing comes from how long the deals closed before it took
(forecast.timing), on a history read once a run for every cutoff (forecast.closing_history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from forecast.closing_history import ClosingHistory, epoch_of
from forecast.frames import coded_frame
from forecast.intervals import SEED, interval, standard_deviation
from forecast.timing import close_month_shares
from warehouse.database import READING_MEMORY_LIMIT, memory_lowered, used_params

# The as-of month and the five after it.
FORECAST_MONTHS = 6

# The temp table deals_at writes: the deals open at its cutoff (source_system,
# opportunity_id, win_probability). Their ids stay in DuckDB: the figures need none of them,
# and at ten million deals a month's few million ids were a GB in pandas.
OPEN_DEALS_TABLE = "deals_at"

# The open deals as they stood at the cutoff, in the order of their ids (the intervals'
# random draws follow it). Numbers as DOUBLE, as the figures use them.
DEALS_AT_SQL = f"""
WITH deal AS (
    SELECT c.source_system, c.opportunity_id, c.win_probability,
        o.owner_id, o.owner_name, o.team, o.account_id, o.amount_reporting, o.created_at,
        o.stage AS stage_now, o.expected_close_date AS close_date_now
    FROM {OPEN_DEALS_TABLE} AS c
    JOIN marts.opportunities AS o USING (source_system, opportunity_id)
),
visit AS (
    SELECT l.source_system, l.opportunity_id,
        arg_max(l.stage, l.visit_number) AS stage, max(l.entered_at) AS stage_entered_at
    FROM marts.opportunity_lifecycle AS l
    JOIN deal AS d USING (source_system, opportunity_id)
    WHERE l.entered_at < $cutoff AND NOT l.is_closing_stage
    GROUP BY 1, 2
),
snapshot AS (
    SELECT s.source_system, s.opportunity_id,
        arg_max(s.expected_close_date, s.snapshot_date) AS close_date_then
    FROM staging.stg_raw__opportunity_snapshots AS s
    JOIN deal AS d USING (source_system, opportunity_id)
    WHERE s.snapshot_date < CAST($cutoff AS DATE) AND s.expected_close_date IS NOT NULL
    GROUP BY 1, 2
),
-- each account's first win known at the cutoff: created and closed before it (a win an
-- export says closed before it was created is not known before its creation, as in
-- forecast.closing_history, whose stage curves this customer type picks)
first_win AS (
    SELECT source_system, account_id, min(closed_at) AS first_won_at
    FROM marts.opportunities
    WHERE status = 'won' AND closed_at < $cutoff AND created_at < $cutoff
        AND account_id IS NOT NULL
    GROUP BY 1, 2
)
SELECT d.source_system, d.owner_id, d.owner_name, d.team,
    CAST(coalesce(d.amount_reporting, 0) AS DOUBLE) AS amount,
    d.win_probability,
    coalesce(v.stage, CASE WHEN $current THEN d.stage_now END) AS stage,
    CAST(s.default_probability / 100.0 AS DOUBLE) AS stage_probability,
    CASE WHEN fw.first_won_at < d.created_at THEN 'existing' ELSE 'new' END AS customer_type,
    (epoch($cutoff) - epoch(coalesce(v.stage_entered_at, d.created_at))) / 86400.0
        AS days_in_stage,
    (epoch($cutoff) - epoch(d.created_at)) / 86400.0 AS age_days,
    -- today the deal's own close date; in the past only what a snapshot showed then
    CASE WHEN $current THEN d.close_date_now ELSE sn.close_date_then END AS expected_close_date
FROM deal AS d
LEFT JOIN visit AS v USING (source_system, opportunity_id)
LEFT JOIN snapshot AS sn USING (source_system, opportunity_id)
LEFT JOIN intermediate.int_stages_resolved AS s
    ON s.source_system = d.source_system
    AND s.stage = coalesce(v.stage, CASE WHEN $current THEN d.stage_now END)
LEFT JOIN first_win AS fw ON fw.source_system = d.source_system AND fw.account_id = d.account_id
ORDER BY d.source_system, d.opportunity_id
"""


@dataclass(frozen=True)
class Months:
    """Calendar months in the business time zone: first days, and where each starts."""

    firsts: list[date]
    timezone: str

    @classmethod
    def starting(cls, first: date, count: int, timezone: str) -> Months:
        firsts = [first]
        for _ in range(count - 1):
            firsts.append(next_month(firsts[-1]))
        return cls(firsts, timezone)

    def start(self, first: date) -> datetime:
        return datetime(first.year, first.month, 1, tzinfo=ZoneInfo(self.timezone))

    def windows(self, cutoff: datetime) -> list[tuple[float, float]]:
        """Each month as (lo, hi] days from the cutoff (a month under way starts at 0)."""
        out = []
        for first in self.firsts:
            lo = (self.start(first) - cutoff).total_seconds() / 86400
            hi = (self.start(next_month(first)) - cutoff).total_seconds() / 86400
            out.append((max(lo, 0.0), hi))
        return out

    def windows_of(self, days: pd.Series, ahead_from: date) -> np.ndarray:
        """Per expected close date: its window when still ahead (-1: after the last month),
        NaN when missing or already past."""
        day = pd.to_datetime(days).to_numpy("datetime64[D]")
        month = day.astype("datetime64[M]")
        first = np.datetime64(self.firsts[0], "M")
        index = (month - first).astype(int)
        out = np.where((index >= 0) & (index < len(self.firsts)), index, -1).astype(float)
        out[np.isnat(day) | (day < np.datetime64(ahead_from, "D"))] = np.nan
        return out


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def deals_at(
    con: duckdb.DuckDBPyConnection,
    probabilities_sql: str,
    cutoff: datetime,
    months: Months,
    ahead_from: date,
    current: bool,
    history: ClosingHistory,
    memory_limit: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The deals `probabilities_sql` selects (source_system, opportunity_id, win_probability;
    it may read $cutoff) as they stood at `cutoff`, with the probability the forecast uses
    (the calibrated one, else the stage's default), and their shares of each month, timed
    on what `history` knew at the cutoff.
    `memory_limit`, the connection's: DuckDB holds less while the frame is read and the
    shares worked out in pandas (warehouse.database.memory_lowered)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {OPEN_DEALS_TABLE} AS SELECT source_system, "
        "opportunity_id, CAST(win_probability AS DOUBLE) AS win_probability "
        f"FROM ({probabilities_sql})",
        used_params(probabilities_sql, {"cutoff": cutoff}),
    )
    params = {"cutoff": cutoff, "current": current}
    # The frame grows in pandas while DuckDB's query feeds it: DuckDB holds less then (its
    # joins spill), or at ten million deals the two together passed the run's budget.
    with memory_lowered(con, memory_limit, READING_MEMORY_LIMIT):
        deals = coded_frame(con, DEALS_AT_SQL, params, categories=False)
    then = history.at(epoch_of(con, cutoff))
    deals["close_window"] = months.windows_of(deals["expected_close_date"], ahead_from)
    # A stage unknown then (no stage history): the source's win rate so far stands in.
    fallback = deals["source_system"].map(then.base_rates).astype(float)
    deals["stage_probability"] = deals["stage_probability"].fillna(fallback).fillna(0.0)
    deals["probability"] = forecast_probability(deals)
    with memory_lowered(con, memory_limit):
        shares = close_month_shares(deals, then.stages, then.cycles, months.windows(cutoff))
    return deals, shares


def forecast_probability(deals: pd.DataFrame) -> pd.Series:
    """The probability the forecast uses: the calibrated win probability, else the stage's
    default (deals_at's `stage_probability`)."""
    return deals["win_probability"].fillna(deals["stage_probability"]).clip(0, 1)


@dataclass(frozen=True)
class DealArrays:
    """The columns the figures need, as arrays (one group's figures are a few dot products)."""

    amount: np.ndarray
    probability: np.ndarray
    stage_probability: np.ndarray

    @classmethod
    def of(cls, deals: pd.DataFrame) -> DealArrays:
        return cls(
            deals["amount"].to_numpy(dtype=float),
            deals["probability"].to_numpy(dtype=float),
            deals["stage_probability"].to_numpy(dtype=float),
        )


def month_figures(
    arrays: DealArrays, rows: np.ndarray, share: np.ndarray, rng: np.random.Generator
) -> dict:
    """The figures of the deals `rows` for one month, each closing in it with `share` (its
    expected amount: probability x share x amount). Deals with no share add nothing."""
    keep = share > 0
    rows, share = rows[keep], share[keep]
    amount = arrays.amount[rows]
    chance = arrays.probability[rows] * share
    low, high = interval(amount, chance, rng)
    return {
        "open_deals": int(len(rows)),
        "pipeline_amount": float(amount @ share),
        "expected_amount": float(amount @ chance),
        "low_amount": low,
        "high_amount": high,
        "stddev_amount": standard_deviation(amount, chance),
        "weighted_pipeline_stage": float(amount @ (arrays.stage_probability[rows] * share)),
    }


FORECAST_COLUMNS = [
    "source_system",
    "owner_id",
    "owner_name",
    "team",
    "forecast_month",
    "open_deals",
    "pipeline_amount",
    "expected_amount",
    "low_amount",
    "high_amount",
    "stddev_amount",
    "weighted_pipeline_stage",
]


def revenue_forecast(deals: pd.DataFrame, shares: np.ndarray, months: Months) -> pd.DataFrame:
    """One row per source, owner and month (the as-of month and the next five)."""
    rng = np.random.default_rng(SEED)
    arrays = DealArrays.of(deals)
    owner_names, teams = deals["owner_name"].to_numpy(), deals["team"].to_numpy()
    rows = []
    groups = deals.groupby(["source_system", "owner_id"], dropna=False, sort=True).indices
    for (source, owner), where in groups.items():
        for k, first in enumerate(months.firsts):
            rows.append(
                {
                    "source_system": source,
                    "owner_id": None if pd.isna(owner) else owner,
                    "owner_name": first_known(owner_names[where]),
                    "team": first_known(teams[where]),
                    "forecast_month": first,
                    **month_figures(arrays, where, shares[where, k], rng),
                }
            )
    return pd.DataFrame(rows, columns=FORECAST_COLUMNS)


def first_known(values: np.ndarray):
    """The first value that is not missing (None when all are)."""
    return next((v for v in values if not pd.isna(v)), None)


ACCURACY_COLUMNS = [
    "source_system",
    "month",
    "open_deals",
    "forecast_amount",
    "low_amount",
    "high_amount",
    "baseline_amount",
    "actual_amount",
    "actual_from_open_deals",
    "new_deal_amount",
    "forecast_error",
    "baseline_error",
    "forecast_abs_error_pct",
    "baseline_abs_error_pct",
    "is_within_interval",
]


def actual_won(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> pd.DataFrame:
    """Per source: the amount won between `start` and `end`, in all and from the deals open
    at the start (the ones the forecast knew: the last deals_at's, in OPEN_DEALS_TABLE)."""
    return con.execute(
        f"""
        SELECT o.source_system,
            coalesce(sum(o.amount_reporting), 0) AS actual_amount,
            coalesce(sum(o.amount_reporting) FILTER (WHERE t.opportunity_id IS NOT NULL), 0)
                AS actual_from_open_deals
        FROM marts.opportunities AS o
        LEFT JOIN {OPEN_DEALS_TABLE} AS t USING (source_system, opportunity_id)
        WHERE o.status = 'won' AND o.closed_at >= $start AND o.closed_at < $end
        GROUP BY 1
        """,
        {"start": start, "end": end},
    ).df()


def accuracy_rows(
    month: date,
    deals: pd.DataFrame,
    shares: np.ndarray,
    actual: pd.DataFrame,
    sources: list[str],
    rng: np.random.Generator,
    open_deals: Mapping[str, int] | None = None,
) -> list[dict]:
    """forecast_accuracy for one past month: per source, the forecast made at its start
    (`deals` and `shares` deals_at's at that start) next to what was won during it
    (`actual`: actual_won's). `open_deals`: per source the deals open at the start, when
    `deals` holds only those with a share of the month (the others add nothing to the
    figures)."""
    actual = actual.set_index("source_system")
    rows = []
    arrays = DealArrays.of(deals)
    for source in sources:
        where = np.flatnonzero((deals["source_system"] == source).to_numpy())
        figures = month_figures(arrays, where, shares[where, 0], rng)
        total = float(actual["actual_amount"].get(source, 0.0))
        known = float(actual["actual_from_open_deals"].get(source, 0.0))
        forecast, baseline = figures["expected_amount"], figures["weighted_pipeline_stage"]
        rows.append(
            {
                "source_system": source,
                "month": month,
                "open_deals": int(len(where) if open_deals is None else open_deals.get(source, 0)),
                "forecast_amount": forecast,
                "low_amount": figures["low_amount"],
                "high_amount": figures["high_amount"],
                "baseline_amount": baseline,
                "actual_amount": total,
                "actual_from_open_deals": known,
                "new_deal_amount": total - known,
                "forecast_error": forecast - known,
                "baseline_error": baseline - known,
                "forecast_abs_error_pct": abs(forecast - known) / known if known else None,
                "baseline_abs_error_pct": abs(baseline - known) / known if known else None,
                "is_within_interval": figures["low_amount"] <= known <= figures["high_amount"],
            }
        )
    return rows


TARGET_ATTAINMENT_SQL = """
WITH won AS (
    SELECT owner_id, team, CAST(date_trunc('month', timezone($tz, closed_at)) AS DATE) AS month,
        sum(amount_reporting) AS won_amount
    FROM marts.opportunities
    WHERE status = 'won' AND closed_at IS NOT NULL
    GROUP BY 1, 2, 3
),
ahead AS (
    SELECT owner_id, team, forecast_month AS month,
        sum(pipeline_amount) AS open_pipeline, sum(expected_amount) AS expected_amount
    FROM marts.revenue_forecast
    GROUP BY 1, 2, 3
),
-- each target's month ahead: the owner's (team's) pipeline due and expected
target_ahead AS (
    SELECT t.target_level, t.owner_id, t.team, t.month,
        sum(a.open_pipeline) AS open_pipeline, sum(a.expected_amount) AS expected_amount
    FROM intermediate.int_targets AS t
    JOIN ahead AS a ON a.month = t.month
        AND ((t.target_level = 'owner' AND a.owner_id = t.owner_id)
          OR (t.target_level = 'team' AND a.team = t.team))
    GROUP BY 1, 2, 3, 4
),
figures AS (
    SELECT t.target_level, t.owner_id, t.team, t.month,
        t.target_amount_reporting AS target_amount,
        coalesce((SELECT sum(w.won_amount) FROM won AS w WHERE w.month = t.month
            AND ((t.target_level = 'owner' AND w.owner_id = t.owner_id)
              OR (t.target_level = 'team' AND w.team = t.team))), 0) AS won_amount,
        CASE WHEN t.month < $first_month THEN 0
            WHEN t.month <= $last_month THEN coalesce(x.open_pipeline, 0) END AS open_pipeline,
        CASE WHEN t.month < $first_month THEN 0
            WHEN t.month <= $last_month THEN coalesce(x.expected_amount, 0) END AS expected_amount
    FROM intermediate.int_targets AS t
    LEFT JOIN target_ahead AS x
        ON x.target_level = t.target_level AND x.month = t.month
        AND x.owner_id IS NOT DISTINCT FROM t.owner_id AND x.team IS NOT DISTINCT FROM t.team
)
SELECT target_level, owner_id,
    (SELECT max(o.owner_name) FROM marts.opportunities AS o WHERE o.owner_id = f.owner_id)
        AS owner_name,
    team, month,
    CAST(target_amount AS DECIMAL(18, 2)) AS target_amount,
    CAST(won_amount AS DECIMAL(18, 2)) AS won_amount,
    won_amount / nullif(target_amount, 0) AS attainment,
    CAST(open_pipeline AS DECIMAL(18, 2)) AS open_pipeline,
    CAST(expected_amount AS DECIMAL(18, 2)) AS expected_amount,
    CASE WHEN month >= $first_month AND target_amount > won_amount
        THEN open_pipeline / (target_amount - won_amount) END AS coverage,
    CAST(target_amount - won_amount - coalesce(expected_amount, 0) AS DECIMAL(18, 2)) AS gap
FROM figures AS f
ORDER BY month, target_level, owner_id, team
"""
