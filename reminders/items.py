"""`marts.action_items`: one row per open deal and reason it needs its owner today.

Built after the grades (a reason may depend on the grade), in SQL over the marts, so it is as
fresh as the run. Only reasons the data can show are given: a source that exported no
activities gets no "no follow-up" items (every deal would look untouched), a stage is "stuck"
only against at least `MIN_VISITS` finished visits of that stage, a close date only when the
export has one.
"""

from __future__ import annotations

from datetime import date

import duckdb

# Reasons, most urgent first (the order of a deal's reasons in a message).
REASONS = ("no_owner", "no_follow_up", "past_close_date", "stuck_in_stage")
# A stage's normal time is its 75th percentile over at least this many finished visits (of
# the deal's industry when it has that many, else of every deal of the source).
MIN_VISITS = 5
# Deals without a grade sort after D.
GRADE_ORDER_SQL = "coalesce(nullif(position(grade IN 'ABCD'), 0), 5)"
# Owner, then the most important deal first (grade, amount), then its reasons by urgency.
ITEM_ORDER_SQL = (
    f"owner_id NULLS LAST, {GRADE_ORDER_SQL}, amount DESC NULLS LAST, opportunity_id, "
    f"list_position({list(REASONS)}, reason_code)"
)

ACTION_ITEMS_SQL = f"""
CREATE OR REPLACE TABLE marts.action_items AS
WITH deals AS (
    SELECT o.source_system, o.opportunity_id, o.opportunity_name, o.owner_id, o.owner_name,
        o.stage, o.industry, o.amount_reporting AS amount, o.reporting_currency AS currency,
        o.expected_close_date, o.days_in_current_stage, o.is_missing_owner,
        coalesce(o.days_since_last_activity, o.age_days) AS days_untouched, p.grade
    FROM marts.opportunities AS o
    LEFT JOIN marts.opportunity_priority AS p
        ON o.source_system = p.source_system AND o.opportunity_id = p.opportunity_id
    WHERE o.status = 'open'
),
sources_with_activities AS (
    SELECT DISTINCT source_system FROM marts.follow_up_frequency WHERE activity_count > 0
),
finished_visits AS (
    SELECT l.source_system, l.stage, coalesce(o.industry, '') AS segment, l.days_in_stage
    FROM marts.opportunity_lifecycle AS l
    INNER JOIN marts.opportunities AS o
        ON l.source_system = o.source_system AND l.opportunity_id = o.opportunity_id
    WHERE l.exited_at IS NOT NULL AND NOT l.is_closing_stage AND l.days_in_stage IS NOT NULL
),
segment_norms AS (
    SELECT source_system, stage, segment, quantile_cont(days_in_stage, 0.75) AS p75
    FROM finished_visits GROUP BY ALL HAVING count(*) >= {MIN_VISITS}
),
stage_norms AS (
    SELECT source_system, stage, quantile_cont(days_in_stage, 0.75) AS p75
    FROM finished_visits GROUP BY ALL HAVING count(*) >= {MIN_VISITS}
),
normed AS (
    SELECT d.*, coalesce(sn.p75, st.p75) AS stage_p75
    FROM deals AS d
    LEFT JOIN segment_norms AS sn
        ON d.source_system = sn.source_system AND d.stage = sn.stage
        AND coalesce(d.industry, '') = sn.segment
    LEFT JOIN stage_norms AS st ON d.source_system = st.source_system AND d.stage = st.stage
),
reasons AS (
    SELECT *, 'no_owner' AS reason_code, NULL::BIGINT AS days FROM normed WHERE is_missing_owner
    UNION ALL BY NAME
    SELECT *, 'no_follow_up' AS reason_code, CAST(floor(days_untouched) AS BIGINT) AS days
    FROM normed
    WHERE grade IN ('A', 'B') AND days_untouched >= $stale_days
        AND source_system IN (SELECT source_system FROM sources_with_activities)
    UNION ALL BY NAME
    SELECT *, 'past_close_date' AS reason_code,
        CAST($as_of - expected_close_date AS BIGINT) AS days
    FROM normed WHERE expected_close_date < $as_of
    UNION ALL BY NAME
    SELECT *, 'stuck_in_stage' AS reason_code,
        CAST(floor(days_in_current_stage) AS BIGINT) AS days
    FROM normed WHERE days_in_current_stage > stage_p75
),
-- the items in their order, before their texts: sorting a million items with two texts
-- each cost 0.5 s more than sorting them without (the texts are written after, below)
ordered AS (
    SELECT source_system, owner_id, owner_name, opportunity_id, opportunity_name, grade, stage,
        amount, currency, reason_code, days, expected_close_date, stage_p75
    FROM reasons
    ORDER BY {ITEM_ORDER_SQL}
)
-- a SELECT over one ordered subquery keeps its order (DuckDB's order preservation), and
-- CREATE TABLE AS keeps the order it is given
SELECT source_system, owner_id, owner_name, opportunity_id, opportunity_name, grade, stage,
    amount, currency, reason_code, days,
    CASE reason_code
        WHEN 'no_owner' THEN '商机没有负责人，请指定一位'
        WHEN 'no_follow_up' THEN
            format('{{}}级商机已{{}}天未跟进（超过{{}}天）', grade, days, $stale_days)
        WHEN 'past_close_date' THEN
            format('预计成交日{{}}已过{{}}天，仍未关闭', strftime(expected_close_date, '%Y-%m-%d'), days)
        WHEN 'stuck_in_stage' THEN
            format('在「{{}}」阶段已{{}}天，同类商机75%在{{}}天内推进', stage, days,
                CAST(ceil(stage_p75) AS BIGINT))
    END AS text_zh,
    CASE reason_code
        WHEN 'no_owner' THEN 'no owner: assign one'
        WHEN 'no_follow_up' THEN
            format('grade {{}} deal not followed up for {{}} days (over {{}})', grade, days,
                $stale_days)
        WHEN 'past_close_date' THEN
            format('expected close date {{}} passed {{}} days ago, still open',
                strftime(expected_close_date, '%Y-%m-%d'), days)
        WHEN 'stuck_in_stage' THEN
            format('{{}} days in {{}}; 75% of similar deals moved on within {{}} days', days,
                stage, CAST(ceil(stage_p75) AS BIGINT))
    END AS text_en,
    CAST($as_of AS DATE) AS as_of_date
FROM ordered
"""


def build_action_items(con: duckdb.DuckDBPyConnection, as_of: date, stale_days: int) -> int:
    """Replace `marts.action_items` with today's items; the number of rows."""
    con.execute(ACTION_ITEMS_SQL, {"as_of": as_of, "stale_days": stale_days})
    return con.execute("SELECT count(*) FROM marts.action_items").fetchone()[0]
