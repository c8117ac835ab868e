"""Read-only, parameterised queries over the serving copy.

Filter values chosen in the UI travel as bound parameters; column and table names are
fixed in this module, never taken from user input. Each query opens the serving copy
read-only and closes it, so a dashboard never holds the file while a run swaps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.query import read_frame
from warehouse.settings import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Filters:
    owners: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None

    def is_set(self) -> bool:
        """Whether any filter narrows the page."""
        return any(self.params().values())

    def params(self) -> dict:
        return {
            "owners": list(self.owners) or None,
            "teams": list(self.teams) or None,
            "industries": list(self.industries) or None,
            "created_from": self.created_from,
            "created_to": self.created_to,
        }


# The deals the filters keep; every filtered query joins on it.
FILTERED = """
filtered AS (
    SELECT source_system, opportunity_id FROM marts.opportunities
    WHERE ($owners IS NULL OR list_contains($owners, owner_name))
      AND ($teams IS NULL OR list_contains($teams, team))
      AND ($industries IS NULL OR list_contains($industries, industry))
      AND ($created_from IS NULL OR CAST(created_at AS DATE) >= $created_from)
      AND ($created_to IS NULL OR CAST(created_at AS DATE) <= $created_to)
)"""


def published_timezone(serving: Path) -> str:
    """The business time zone the serving copy was built in (its days are that zone's)."""
    try:
        frame = read_frame(serving, "SELECT * FROM main.publication", DEFAULT_TIMEZONE)
    except (duckdb.Error, FileNotFoundError):  # no copy yet, or an unreadable one
        return DEFAULT_TIMEZONE
    if "timezone" not in frame or frame.empty or not frame["timezone"].iloc[0]:
        return DEFAULT_TIMEZONE
    return str(frame["timezone"].iloc[0])


def read(
    serving: Path, sql: str, params: dict | None = None, timezone: str | None = None
) -> pd.DataFrame:
    """Through the locked read-only door every reader uses (warehouse.query), in the time
    zone the serving copy was built in."""
    return read_frame(serving, sql, timezone or published_timezone(serving), params)


def filtered(sql: str) -> str:
    """Prefix a query with the `filtered` CTE (the query starts with ', name AS (...)' or SELECT)."""
    return f"WITH {FILTERED}\n{sql}"


QUERIES = {
    "filter_options": """
        SELECT DISTINCT 'owner' AS kind, owner_name AS value FROM marts.opportunities WHERE owner_name IS NOT NULL
        UNION ALL SELECT DISTINCT 'team', team FROM marts.opportunities WHERE team IS NOT NULL
        UNION ALL SELECT DISTINCT 'industry', industry FROM marts.opportunities WHERE industry IS NOT NULL
        ORDER BY 1, 2""",
    "as_of": "SELECT max(as_of) AS as_of FROM main.publication",
    "headline": filtered("""
        SELECT
            count(*) FILTER (WHERE o.status = 'open') AS open_deals,
            coalesce(sum(o.amount_reporting) FILTER (WHERE o.status = 'open'), 0) AS open_pipeline,
            coalesce(sum(o.weighted_amount), 0) AS weighted_pipeline,
            count(*) FILTER (WHERE o.status = 'won')
                / nullif(count(*) FILTER (WHERE o.status IN ('won', 'lost')), 0) AS win_rate,
            count(*) FILTER (WHERE o.is_stale) AS stale_deals,
            (SELECT avg(CASE WHEN l.loss_reason_category = 'unspecified' THEN 1.0 ELSE 0.0 END)
             FROM marts.loss_reasons AS l JOIN filtered USING (source_system, opportunity_id))
                AS share_unspecified
        FROM marts.opportunities AS o JOIN filtered USING (source_system, opportunity_id)"""),
    "pipeline_by_stage": filtered("""
        SELECT o.stage, min(o.stage_order) AS stage_order, count(*) AS deals,
            sum(o.amount_reporting) AS amount
        FROM marts.opportunities AS o JOIN filtered USING (source_system, opportunity_id)
        WHERE o.status = 'open' GROUP BY 1 ORDER BY 2, 1"""),
    "funnel": filtered("""
        SELECT stage, stage_order, reached,
            reached / first_value(reached) OVER (ORDER BY stage_order) AS conversion
        FROM (
            SELECT l.stage, min(l.stage_order) AS stage_order,
                count(DISTINCT l.opportunity_id) AS reached
            FROM marts.opportunity_lifecycle AS l JOIN filtered USING (source_system, opportunity_id)
            WHERE NOT l.is_closing_stage AND l.stage_order IS NOT NULL GROUP BY 1
        ) ORDER BY stage_order"""),
    "win_rate_trend": filtered("""
        SELECT CAST(date_trunc('month', o.closed_at) AS DATE) AS month,
            count(*) FILTER (WHERE o.status = 'won') / count(*) AS win_rate, count(*) AS deals
        FROM marts.opportunities AS o JOIN filtered USING (source_system, opportunity_id)
        WHERE o.status IN ('won', 'lost') AND o.closed_at IS NOT NULL GROUP BY 1 ORDER BY 1"""),
    "time_per_stage": filtered("""
        SELECT l.stage, min(l.stage_order) AS stage_order, count(*) AS visits,
            round(median(l.days_in_stage), 1) AS median_days,
            round(quantile_cont(l.days_in_stage, 0.9), 1) AS p90_days,
            count(*) FILTER (WHERE l.is_regression) AS regressions
        FROM marts.opportunity_lifecycle AS l JOIN filtered USING (source_system, opportunity_id)
        WHERE NOT l.is_closing_stage GROUP BY 1 ORDER BY 2, 1"""),
    "stale_deals": filtered("""
        SELECT o.opportunity_id, o.opportunity_name, o.owner_name, o.stage,
            round(coalesce(o.days_since_last_activity, o.age_days), 1) AS days_since, o.amount_reporting
        FROM marts.opportunities AS o JOIN filtered USING (source_system, opportunity_id)
        WHERE o.is_stale ORDER BY days_since DESC LIMIT 200"""),
    "touches_per_week": """
        SELECT week_start AS week, coalesce(owner_name, owner_id) AS owner, touches, deals_owned
        FROM marts.follow_up_weekly
        WHERE activity_type = 'all' AND ($owners IS NULL OR list_contains($owners, owner_name))
          AND ($teams IS NULL OR list_contains($teams, team))
          AND week_start >= (SELECT max(week_start) FROM marts.follow_up_weekly) - INTERVAL 12 WEEK
          -- whole weeks only: the as-of week is not over (its touches would drop to nothing)
          AND week_start + INTERVAL 6 DAY <= (SELECT as_of FROM main.publication)
          -- the six owners with the most touches: a readable number of lines
          AND coalesce(owner_name, owner_id) IN (
              SELECT coalesce(owner_name, owner_id) FROM marts.follow_up_weekly
              WHERE activity_type = 'all' GROUP BY 1 ORDER BY sum(touches) DESC LIMIT 6)
        ORDER BY 1, 2""",
    "touches_by_outcome": filtered("""
        SELECT f.status AS outcome, count(*) AS deals, round(avg(f.touches_before_close), 1) AS avg_touches
        FROM marts.follow_up_frequency AS f JOIN filtered USING (source_system, opportunity_id)
        WHERE f.status IN ('won', 'lost') GROUP BY 1 ORDER BY 1 DESC"""),
    "cycle_by_segment": """
        SELECT segment_value AS segment, outcome, deals, p50_days, p75_days, p90_days, slowest_stage
        FROM marts.cycle_time_summary WHERE segment_type = $segment_type ORDER BY outcome, p50_days DESC""",
    "pareto": filtered("""
        SELECT l.loss_reason_category AS category, count(*) AS deals, sum(l.amount_reporting) AS amount
        FROM marts.loss_reasons AS l JOIN filtered USING (source_system, opportunity_id)
        GROUP BY 1 ORDER BY 2 DESC"""),
    "unspecified_by_month": filtered("""
        SELECT l.lost_month AS month,
            avg(CASE WHEN l.loss_reason_category = 'unspecified' THEN 1.0 ELSE 0.0 END) AS share_unspecified,
            count(*) AS deals
        FROM marts.loss_reasons AS l JOIN filtered USING (source_system, opportunity_id)
        GROUP BY 1 ORDER BY 1"""),
    "unspecified_by_owner": filtered("""
        SELECT coalesce(l.owner_name, l.owner_id, '-') AS owner,
            avg(CASE WHEN l.loss_reason_category = 'unspecified' THEN 1.0 ELSE 0.0 END) AS share_unspecified,
            count(*) AS deals
        FROM marts.loss_reasons AS l JOIN filtered USING (source_system, opportunity_id)
        GROUP BY 1 ORDER BY 2 DESC"""),
    "priority": filtered("""
        SELECT p.grade, p.score, p.trend, p.opportunity_id, p.opportunity_name, p.owner_name,
            p.stage, p.amount_reporting, p.reasons
        FROM marts.opportunity_priority AS p JOIN filtered USING (source_system, opportunity_id)
        ORDER BY p.grade, p.score DESC"""),
    "calibration": """
        SELECT source_system, grade, period, closed_deals, won_deals, win_rate, base_win_rate, lift
        FROM marts.grade_calibration ORDER BY source_system, period, grade""",
    "validation": """
        SELECT source_system, closed_deals_scored, auc, is_better_than_chance,
            writeback_status, why
        FROM marts.scoring_validation ORDER BY source_system""",
    "forecast_by_month": """
        SELECT f.forecast_month AS month, sum(f.expected_amount) AS expected_amount,
            sqrt(sum(f.stddev_amount * f.stddev_amount)) AS stddev_amount,
            sum(f.weighted_pipeline_stage) AS weighted_pipeline_stage,
            sum(f.pipeline_amount) AS pipeline_amount,
            coalesce(
                (SELECT sum(t.target_amount) FROM marts.target_attainment AS t
                 WHERE t.target_level = 'owner' AND t.month = f.forecast_month
                   AND ($owners IS NULL OR list_contains($owners, t.owner_name))
                   AND $teams IS NULL),
                (SELECT sum(t.target_amount) FROM marts.target_attainment AS t
                 WHERE t.target_level = 'team' AND t.month = f.forecast_month
                   AND $owners IS NULL AND ($teams IS NULL OR list_contains($teams, t.team)))
            ) AS target_amount
        FROM marts.revenue_forecast AS f
        WHERE ($owners IS NULL OR list_contains($owners, f.owner_name))
          AND ($teams IS NULL OR list_contains($teams, f.team))
        GROUP BY 1 ORDER BY 1""",
    "attainment": """
        SELECT month, target_level, coalesce(owner_name, owner_id, team) AS name, target_amount,
            won_amount, attainment, open_pipeline, expected_amount, coverage, gap
        FROM marts.target_attainment
        WHERE month >= (SELECT date_trunc('month', max(as_of)) FROM main.publication) - INTERVAL 1 MONTH
          AND ($owners IS NULL OR list_contains($owners, owner_name))
          AND ($teams IS NULL OR list_contains($teams, team))
        ORDER BY month, target_level, name""",
    "accuracy": """
        SELECT month, source_system, forecast_amount, baseline_amount, actual_from_open_deals,
            actual_amount, forecast_abs_error_pct, baseline_abs_error_pct, is_within_interval
        FROM marts.forecast_accuracy ORDER BY month, source_system""",
    "quality_report": """
        SELECT severity, check_name, table_name, file_name, failing_rows, description, fix
        FROM quality.check_results
        WHERE run_id = (SELECT run_id FROM quality.check_results ORDER BY checked_at DESC LIMIT 1)
          AND NOT passed
        ORDER BY CASE severity WHEN 'block' THEN 0 WHEN 'error' THEN 1 ELSE 2 END, failing_rows DESC""",
    "completeness": """
        SELECT coalesce(owner_name, owner_id, '-') AS owner, deals, fill_rate_amount,
            fill_rate_expected_close_date, fill_rate_industry, fill_rate_loss_reason, data_completeness
        FROM marts.owner_performance
        WHERE ($owners IS NULL OR list_contains($owners, owner_name))
        ORDER BY data_completeness""",
    "load_ledger": """
        SELECT recorded_at, file_name, status, table_name, rows_loaded, rows_rejected, message
        FROM quality.load_ledger ORDER BY load_id DESC LIMIT 50""",
}


def query(serving: Path, name: str, filters: Filters | None = None, **extra) -> pd.DataFrame:
    params = {**(filters or Filters()).params(), **extra}
    return read(serving, QUERIES[name], params)
