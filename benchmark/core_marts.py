"""The second floor of `oppwh bench`: five core marts written by hand in plain DuckDB SQL.

#19 measures a full run against two floors. The first runs the project's own compiled model
SQL (benchmark.bench.floor). This one is what an analyst with DuckDB alone would write for
the five marts the project exists for (DESIGN.md): the deals, their stage visits, their
follow-up, the cycle time of the closed ones and the reasons of the lost ones, straight from
the raw tables that floor loads, with none of the project's care (no deduplication of
re-exports, no merged deals, no stage map, no time-zone rules beyond the session's, no
tests). A run that does all of that cannot reach this floor; the target is to stay within
five times it.

Each statement reads the tables `raw.opportunities`, `raw.stage_history`,
`raw.activities`, `raw.accounts` and `raw.owners` and writes schema `core_floor`; `$end` is
the end of the as-of day. Statuses are read in English or Chinese (the bench's exports
write 进行中 / 赢单 / 输单).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

SCHEMA = "core_floor"
STATUS = (
    "CASE WHEN o.status IN ('won', '赢单') THEN 'won' "
    "WHEN o.status IN ('lost', '输单') THEN 'lost' ELSE 'open' END"
)
CLOSING = "('won', 'lost', '赢单', '输单')"
DAYS = "(epoch({end}) - epoch({start})) / 86400.0"

# In build order: each may read the ones before it.
STATEMENTS = {
    "deals": f"""
        SELECT o.opportunity_id, o.opportunity_name, o.stage, {STATUS} AS status, o.amount,
            o.currency, o.owner_id, w.owner_name, o.account_id, a.account_name, a.industry,
            a.employees, o.source, o.created_at, o.closed_at, o.loss_reason
        FROM raw.opportunities AS o
        LEFT JOIN raw.accounts AS a USING (account_id)
        LEFT JOIN raw.owners AS w USING (owner_id)
        WHERE NOT coalesce(o.is_deleted, false)
    """,
    "opportunity_lifecycle": f"""
        SELECT opportunity_id, stage,
            row_number() OVER w AS visit_number,
            entered_at,
            lead(entered_at) OVER w AS exited_at,
            CASE WHEN stage NOT IN {CLOSING}
                THEN {DAYS.format(end="coalesce(lead(entered_at) OVER w, $end)", start="entered_at")}
            END AS days_in_stage,
            lead(entered_at) OVER w IS NULL AS is_current
        FROM raw.stage_history
        WHERE NOT coalesce(is_deleted, false) AND entered_at < $end
        WINDOW w AS (PARTITION BY opportunity_id ORDER BY entered_at)
    """,
    "touches": f"""
        SELECT opportunity_id, activity_type, occurred_at,
            {DAYS.format(end="occurred_at", start="lag(occurred_at) OVER (PARTITION BY opportunity_id ORDER BY occurred_at)")}
                AS gap_days
        FROM raw.activities
        WHERE opportunity_id IS NOT NULL AND NOT coalesce(is_deleted, false)
            AND occurred_at < $end
    """,
    "follow_up_frequency": f"""
        WITH per_deal AS (
            SELECT opportunity_id, count(*) AS activity_count,
                count(*) FILTER (WHERE activity_type IN ('call', '电话')) AS calls,
                count(*) FILTER (WHERE activity_type IN ('visit', '拜访')) AS visits,
                count(*) FILTER (WHERE activity_type IN ('message', '微信')) AS messages,
                count(*) FILTER (WHERE activity_type IN ('email', '邮件')) AS emails,
                count(*) FILTER (WHERE activity_type IN ('meeting', '会议')) AS meetings,
                count(*) FILTER (WHERE occurred_at >= $end - INTERVAL 7 DAY) AS touches_last_7_days,
                count(*) FILTER (WHERE occurred_at >= $end - INTERVAL 30 DAY) AS touches_last_30_days,
                median(gap_days) AS median_gap_days,
                max(gap_days) AS max_gap_days,
                max(occurred_at) AS last_activity_at
            FROM {SCHEMA}.touches
            GROUP BY 1
        )
        SELECT d.opportunity_id, d.status,
            coalesce(p.activity_count, 0) AS activity_count,
            coalesce(p.calls, 0) AS calls, coalesce(p.visits, 0) AS visits,
            coalesce(p.messages, 0) AS messages, coalesce(p.emails, 0) AS emails,
            coalesce(p.meetings, 0) AS meetings,
            coalesce(p.touches_last_7_days, 0) AS touches_last_7_days,
            coalesce(p.touches_last_30_days, 0) AS touches_last_30_days,
            p.median_gap_days, p.max_gap_days, p.last_activity_at,
            {DAYS.format(end="$end", start="p.last_activity_at")} AS days_since_last_activity,
            coalesce(p.activity_count, 0) / greatest(
                {DAYS.format(end="CASE WHEN d.status = 'open' THEN $end ELSE coalesce(d.closed_at, $end) END", start="d.created_at")} / 7.0,
                1.0
            ) AS touches_per_open_week,
            d.status = 'open' AND coalesce(
                {DAYS.format(end="$end", start="p.last_activity_at")},
                {DAYS.format(end="$end", start="d.created_at")}
            ) > 14 AS is_stale
        FROM {SCHEMA}.deals AS d
        LEFT JOIN per_deal AS p USING (opportunity_id)
    """,
    "opportunities": f"""
        SELECT d.*,
            CASE WHEN d.status <> 'open'
                THEN {DAYS.format(end="d.closed_at", start="d.created_at")}
            END AS cycle_time_days,
            {DAYS.format(end="$end", start="d.created_at")} AS age_days,
            CASE WHEN d.status = 'open' THEN l.days_in_stage END AS days_in_current_stage,
            f.last_activity_at, f.days_since_last_activity, f.activity_count, f.is_stale
        FROM {SCHEMA}.deals AS d
        LEFT JOIN {SCHEMA}.opportunity_lifecycle AS l
            ON l.opportunity_id = d.opportunity_id AND l.is_current
        LEFT JOIN {SCHEMA}.follow_up_frequency AS f ON f.opportunity_id = d.opportunity_id
    """,
    "cycle_time": f"""
        WITH stage_days AS (
            PIVOT (
                SELECT opportunity_id, stage, days_in_stage FROM {SCHEMA}.opportunity_lifecycle
                WHERE stage NOT IN {CLOSING}
            ) ON stage USING sum(days_in_stage) GROUP BY opportunity_id
        )
        SELECT o.opportunity_id, o.status AS outcome, o.cycle_time_days, o.industry,
            CASE WHEN o.employees < 50 THEN 'small' WHEN o.employees < 500 THEN 'medium'
                WHEN o.employees IS NOT NULL THEN 'large' END AS size_band,
            CASE WHEN o.amount < 100000 THEN 'under 100k' WHEN o.amount < 1000000 THEN '100k-1M'
                WHEN o.amount IS NOT NULL THEN '1M and over' END AS amount_band,
            o.source, o.owner_id, s.* EXCLUDE (opportunity_id)
        FROM {SCHEMA}.opportunities AS o
        LEFT JOIN stage_days AS s USING (opportunity_id)
        WHERE o.status <> 'open' AND o.closed_at IS NOT NULL
    """,
    "loss_reasons": f"""
        WITH lost_at AS (
            SELECT opportunity_id, arg_max(stage, entered_at) AS stage_lost_at
            FROM {SCHEMA}.opportunity_lifecycle
            WHERE stage NOT IN {CLOSING}
            GROUP BY 1
        )
        SELECT o.opportunity_id, o.loss_reason,
            CASE WHEN trim(coalesce(o.loss_reason, '')) = '' THEN 'unspecified'
                ELSE trim(o.loss_reason) END AS loss_reason_category,
            l.stage_lost_at, o.industry, o.owner_id, o.amount, o.closed_at
        FROM {SCHEMA}.opportunities AS o
        LEFT JOIN lost_at AS l USING (opportunity_id)
        WHERE o.status = 'lost'
    """,
}
# The five marts (the others are steps on the way).
MARTS = (
    "opportunities",
    "opportunity_lifecycle",
    "follow_up_frequency",
    "cycle_time",
    "loss_reasons",
)


def build_core_marts(con: duckdb.DuckDBPyConnection, as_of_end: datetime) -> dict[str, int]:
    """Write the five core marts into schema core_floor from the raw tables; each mart's
    row count."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name, sql in STATEMENTS.items():
        params = {"end": as_of_end} if "$end" in sql else {}
        con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} AS {sql}", params)
    return {
        name: con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchone()[0] for name in MARTS
    }
