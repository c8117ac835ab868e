"""Native-format sample exports at benchmark scale, generated inside DuckDB.

A million opportunities, ~3.5 million stage changes and ~12 million activities in a few
minutes: every value comes from hash() of the row number (deterministic, no Python loop),
and DuckDB writes the CSVs itself.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from warehouse.database import connect

STAGES = "['初步接触', '需求确认', '方案报价', '商务谈判']"
TYPES = "['电话', '电话', '微信', '微信', '拜访', '邮件', '会议']"
INDUSTRIES = "['制造业', '金融', '互联网', '零售', '医疗', '教育', '物流']"


def _copy(con, sql: str, path: Path) -> int:
    """Stream the query's rows into a CSV (never held in memory whole); the row count.
    Insertion order is kept (DuckDB's default), so the same arguments give the same bytes."""
    quoted = str(path).replace("'", "''")
    return con.execute(f"COPY ({sql}) TO '{quoted}' (HEADER, DELIMITER ',')").fetchone()[0]


def generate_at_scale(
    out: Path, opportunities: int, as_of: date, activities_per_deal: int = 12, seed: int = 7
) -> dict[str, int]:
    """Write owners, accounts, opportunities, stage_history and activities CSVs."""
    out.mkdir(parents=True, exist_ok=True)
    accounts = max(10, opportunities // 3)
    counts = {}
    with connect() as con:
        con.execute("SET enable_progress_bar = false")
        params = f"{seed} AS seed, DATE '{as_of.isoformat()}' AS as_of"
        con.execute(f"CREATE TEMP TABLE p AS SELECT {params}")
        counts["owners"] = _copy(
            con,
            """
            SELECT 'U' || lpad(i::varchar, 4, '0') AS owner_id, '销售' || i AS owner_name,
                '团队' || (i % 12) AS team, CASE WHEN i % 10 = 0 THEN NULL ELSE 'U' || lpad((i - i % 10)::varchar, 4, '0') END AS manager_id
            FROM range(200) t(i)""",
            out / "owners.csv",
        )
        counts["accounts"] = _copy(
            con,
            f"""
            SELECT 'A' || lpad(i::varchar, 7, '0') AS account_id, '客户' || i AS account_name,
                {INDUSTRIES}[1 + (hash(i, 'ind', (SELECT seed FROM p)) % 7)::BIGINT] AS industry,
                [20, 50, 120, 300, 800, 2000, 5000][1 + (hash(i, 'emp') % 7)::BIGINT] AS employees,
                (hash(i, 'rev') % 1000) * 100000 AS annual_revenue, '华东' AS region
            FROM range({accounts}) t(i)""",
            out / "accounts.csv",
        )
        con.execute(f"""
            CREATE TEMP TABLE deals AS
            SELECT i,
                'B' || lpad(i::varchar, 8, '0') AS opportunity_id,
                'A' || lpad((hash(i, 'acc') % {accounts})::varchar, 7, '0') AS account_id,
                'U' || lpad((hash(i, 'own') % 200)::varchar, 4, '0') AS owner_id,
                (SELECT as_of FROM p)::timestamp - to_days(5 + (hash(i, 'age') % 355)::int)
                    - to_minutes((hash(i, 'min') % 600)::int) AS created_at,
                (1 + hash(i, 'far') % 4)::BIGINT AS furthest,
                (hash(i, 'close') % 100)::BIGINT AS close_roll,
                (hash(i, 'win') % 100)::BIGINT AS win_roll,
                (3 + hash(i, 'amt') % 120) * 10000 AS amount
            FROM range({opportunities}) t(i)""")
        # An export holds only what happened by its day: an open deal has entered the stages
        # whose entry (every 14 days from creation) falls before the end of the as-of day, and
        # stands in the last of them. (Entries after the day would fall on a later day's run and
        # make the benchmark's next day rebuild the deals for changes no real export has.)
        con.execute("""
            CREATE TEMP TABLE deals2 AS
            SELECT * REPLACE (
                CASE WHEN st = 'open' THEN least(furthest, 1 + (date_diff('minute', created_at,
                    (SELECT as_of FROM p)::timestamp + INTERVAL 1 DAY) - 1) // 20160)
                ELSE furthest END AS furthest)
            FROM (
                SELECT *,
                    created_at + to_days((furthest * 14)::int) AS end_at,
                    CASE WHEN close_roll < 65 AND created_at + to_days((furthest * 14)::int) < (SELECT as_of FROM p)
                         THEN CASE WHEN win_roll < 35 THEN 'won' ELSE 'lost' END ELSE 'open' END AS st
                FROM deals
            )""")
        counts["opportunities"] = _copy(
            con,
            f"""
            SELECT opportunity_id, '商机' || i AS opportunity_name, account_id, owner_id,
                CASE st WHEN 'won' THEN '赢单' WHEN 'lost' THEN '输单' ELSE {STAGES}[furthest] END AS stage,
                CASE st WHEN 'won' THEN '赢单' WHEN 'lost' THEN '输单' ELSE '进行中' END AS status,
                amount, 'CNY' AS currency,
                strftime(created_at, '%Y-%m-%d %H:%M:%S') AS created_at,
                CASE WHEN st <> 'open' THEN strftime(end_at, '%Y-%m-%d %H:%M:%S') END AS closed_at,
                strftime(created_at + INTERVAL 90 DAY, '%Y-%m-%d') AS expected_close_date,
                CASE WHEN st = 'lost' AND hash(i, 'why') % 10 < 6
                     THEN ['价格太高', '选择了竞争对手', '预算不足', '客户无回应'][1 + (hash(i, 'r') % 4)::BIGINT] END AS loss_reason,
                ['官网', '展会', '转介绍'][1 + (hash(i, 'src') % 3)::BIGINT] AS source, 'false' AS is_deleted
            FROM deals2""",
            out / "opportunities.csv",
        )
        counts["stage_history"] = _copy(
            con,
            f"""
            SELECT opportunity_id, {STAGES}[k] AS stage,
                strftime(created_at + to_days(((k - 1) * 14)::int), '%Y-%m-%d %H:%M:%S') AS entered_at
            FROM deals2, range(1, 5) s(k) WHERE k <= furthest
            UNION ALL
            SELECT opportunity_id, CASE st WHEN 'won' THEN '赢单' ELSE '输单' END,
                strftime(end_at, '%Y-%m-%d %H:%M:%S')
            FROM deals2 WHERE st <> 'open'""",
            out / "stage_history.csv",
        )
        counts["activities"] = _copy(
            con,
            f"""
            SELECT 'T' || lpad((i * {activities_per_deal} + k)::varchar, 10, '0') AS activity_id,
                opportunity_id, account_id, owner_id,
                {TYPES}[1 + (hash(i, k, 'type') % 7)::BIGINT] AS activity_type,
                strftime(least(created_at + to_minutes((hash(i, k, 'at') % greatest(1, date_diff('minute', created_at, least(end_at, (SELECT as_of FROM p)::timestamp))))::int),
                               (SELECT as_of FROM p)::timestamp),
                         '%Y-%m-%d %H:%M:%S') AS occurred_at,
                hash(i, k, 'dur') % 1800 AS duration_seconds, '跟进' AS subject
            FROM deals2, range({activities_per_deal}) a(k)""",
            out / "activities.csv",
        )
    return counts


def generate_increment(
    out: Path,
    opportunities: int,
    as_of: date,
    changed: int,
    activities_per_deal: int = 12,
    base: Path | None = None,
) -> dict[str, int]:
    """The next day's exports: one new day of activities (~0.1%) and `changed` deals moved on
    (none: only the activities file).

    With `base` (the full export's folder), the changed deals are also re-exported as a
    partial opportunities file: moved to 商务谈判 with a new amount, one in five won today.
    """
    out.mkdir(parents=True, exist_ok=True)
    stamp = as_of.strftime("%Y%m%d")
    new_touches = max(1, opportunities * activities_per_deal // 1000)
    counts = {}
    with connect() as con:
        con.execute("SET enable_progress_bar = false")
        counts["activities"] = _copy(
            con,
            f"""
            SELECT 'N{stamp}-' || i AS activity_id, 'B' || lpad((hash(i, 'pick') % {opportunities})::varchar, 8, '0') AS opportunity_id,
                NULL AS account_id, NULL AS owner_id, ['电话', '微信', '拜访'][1 + (i % 3)::BIGINT] AS activity_type,
                strftime(DATE '{as_of.isoformat()}' + to_minutes((540 + i % 480)::int), '%Y-%m-%d %H:%M:%S') AS occurred_at,
                60 AS duration_seconds, '跟进' AS subject
            FROM range({new_touches}) t(i)""",
            out / f"activities_{stamp}.csv",
        )
        if changed == 0:
            return counts  # the usual next day: new activities only
        counts["stage_history"] = _copy(
            con,
            f"""
            SELECT 'B' || lpad((hash(i, 'chg') % {opportunities})::varchar, 8, '0') AS opportunity_id,
                '商务谈判' AS stage, strftime(DATE '{as_of.isoformat()}' + INTERVAL 10 HOUR, '%Y-%m-%d %H:%M:%S') AS entered_at
            FROM range({changed}) t(i)""",
            out / f"stage_history_{stamp}.csv",
        )
        if base is not None:
            source = str(base / "opportunities.csv").replace("'", "''")
            day = as_of.isoformat()
            counts["opportunities"] = _copy(
                con,
                f"""
                WITH picked AS (
                    SELECT DISTINCT 'B' || lpad((hash(i, 'chg') % {opportunities})::varchar, 8, '0') AS opportunity_id
                    FROM range({changed}) t(i)
                )
                SELECT o.* REPLACE (
                    CASE WHEN hash(o.opportunity_id) % 5 = 0 THEN '赢单' ELSE '商务谈判' END AS stage,
                    CASE WHEN hash(o.opportunity_id) % 5 = 0 THEN '赢单' ELSE '进行中' END AS status,
                    CAST(CAST(o.amount AS BIGINT) * 11 / 10 AS VARCHAR) AS amount,
                    CASE WHEN hash(o.opportunity_id) % 5 = 0 THEN '{day} 16:00:00' END AS closed_at,
                    NULL AS loss_reason
                )
                FROM read_csv('{source}', all_varchar=true) AS o
                INNER JOIN picked USING (opportunity_id)
                WHERE o.status = '进行中'""",
                out / f"opportunities_{stamp}.csv",
            )
    return counts
