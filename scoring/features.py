"""Features of each deal as they stood at a cutoff moment, computed in DuckDB.

The same query serves today's scoring (cutoff = end of the as-of day, for open deals) and
calibration (cutoff = some days before each past deal closed): every input is filtered to
what had happened before the cutoff (touches, stage visits, the account's closed deals,
the industry's closed months), so a past deal is never scored with its own outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pandas as pd

# What every deal is measured against, whatever its cutoff (the forecast's backtest hashes
# the same SQL to tell whether these moved).
NORMS_SQL = """
    SELECT source_system, stage, median(days_in_stage) AS usual_days_in_stage
    FROM marts.opportunity_lifecycle
    WHERE exited_at IS NOT NULL AND NOT is_closing_stage
    GROUP BY 1, 2
"""
SPAN_SQL = """
    SELECT source_system, min(stage_order) AS first_order, max(stage_order) AS last_order
    FROM marts.funnel_conversion GROUP BY 1
"""
AMOUNTS_SQL = """
    SELECT source_system, median(amount_reporting) AS typical_amount
    FROM marts.opportunities GROUP BY 1
"""

FEATURES_SQL = f"""
WITH deal AS (
    -- deal_key: one number per (deal, cutoff) row, what the per-deal aggregates group and
    -- join on (three keys, two of them text, over tens of millions of joined touches cost
    -- seconds); the touch windows' starts worked out once per row, not once per touch
    SELECT c.deal_key, c.source_system, c.opportunity_id, c.cutoff,
        c.cutoff - INTERVAL 30 DAY AS since_30d, c.cutoff - INTERVAL 60 DAY AS since_60d,
        o.account_id, o.industry, o.employees, o.amount_reporting, o.created_at, o.status
    FROM cutoffs AS c
    JOIN marts.opportunities AS o USING (source_system, opportunity_id)
),
touch AS (
    SELECT d.deal_key,
        max(a.occurred_at) AS last_touch_at,
        count(*) FILTER (WHERE a.occurred_at >= d.since_30d) AS touches_30d,
        count(*) FILTER (WHERE a.occurred_at >= d.since_60d
                           AND a.occurred_at < d.since_30d) AS touches_prev_30d
    FROM deal AS d
    JOIN intermediate.int_opportunity_touches AS a
      ON a.source_system = d.source_system AND a.opportunity_id = d.opportunity_id
     AND a.occurred_at < d.cutoff
    GROUP BY 1
),
visit AS (
    SELECT d.deal_key,
        first(l.stage ORDER BY l.visit_number DESC) AS stage,
        first(l.stage_order ORDER BY l.visit_number DESC) AS stage_order,
        max(l.entered_at) AS stage_entered_at,
        count(*) FILTER (WHERE l.is_regression) AS regressions
    FROM deal AS d
    JOIN marts.opportunity_lifecycle AS l
      ON l.source_system = d.source_system AND l.opportunity_id = d.opportunity_id
     AND l.entered_at < d.cutoff AND NOT l.is_closing_stage
    GROUP BY 1
),
norms AS ({NORMS_SQL}),
span AS ({SPAN_SQL}),
account AS (
    SELECT d.deal_key,
        count(*) FILTER (WHERE p.status = 'won') AS account_wins,
        count(*) FILTER (WHERE p.status = 'lost') AS account_losses,
        coalesce(sum(p.amount_reporting) FILTER (WHERE p.status = 'won'), 0) AS account_won_value
    FROM deal AS d
    JOIN marts.opportunities AS p
      ON p.source_system = d.source_system AND p.account_id = d.account_id
     AND p.opportunity_id <> d.opportunity_id AND p.status IN ('won', 'lost')
     AND p.closed_at < d.cutoff
    GROUP BY 1
),
industry_month AS (
    SELECT source_system, industry, date_trunc('month', closed_at) AS month,
        count(*) FILTER (WHERE status = 'won') AS won, count(*) AS closed
    FROM marts.opportunities
    WHERE status IN ('won', 'lost') AND industry IS NOT NULL AND closed_at IS NOT NULL
    GROUP BY 1, 2, 3
),
-- per industry and cutoff, not per deal: today's open deals share one cutoff, so a few
-- industries' months are summed instead of every deal's
industry AS (
    SELECT d.source_system, d.industry, d.cutoff,
        sum(m.won) FILTER (WHERE m.month >= d.cutoff - INTERVAL 120 DAY)
            / nullif(sum(m.closed) FILTER (WHERE m.month >= d.cutoff - INTERVAL 120 DAY), 0)
            AS industry_recent_win_rate,
        sum(m.closed) FILTER (WHERE m.month >= d.cutoff - INTERVAL 120 DAY)
            AS industry_recent_closed,
        sum(m.won) / nullif(sum(m.closed), 0) AS industry_longrun_win_rate
    FROM (SELECT DISTINCT source_system, industry, cutoff FROM deal) AS d
    JOIN industry_month AS m
      ON m.source_system = d.source_system AND m.industry = d.industry
     AND m.month < date_trunc('month', d.cutoff) AND m.month >= d.cutoff - INTERVAL 400 DAY
    GROUP BY 1, 2, 3
),
pushes AS (
    SELECT d.deal_key, count(*) AS close_date_pushes
    FROM deal AS d
    JOIN (
        SELECT source_system, opportunity_id, snapshot_date, expected_close_date,
            lag(expected_close_date) OVER (
                PARTITION BY source_system, opportunity_id ORDER BY snapshot_date, _load_id
            ) AS previous_close_date
        FROM staging.stg_raw__opportunity_snapshots
    ) AS s
      ON s.source_system = d.source_system AND s.opportunity_id = d.opportunity_id
     AND s.snapshot_date < CAST(d.cutoff AS DATE)
     AND s.expected_close_date > s.previous_close_date
    GROUP BY 1
),
close_history AS (
    SELECT d.deal_key, count(*) >= 2 AS has_close_date_history
    FROM deal AS d
    JOIN staging.stg_raw__opportunity_snapshots AS s
      ON s.source_system = d.source_system AND s.opportunity_id = d.opportunity_id
     AND s.snapshot_date < CAST(d.cutoff AS DATE) AND s.expected_close_date IS NOT NULL
    GROUP BY 1
),
amounts AS ({AMOUNTS_SQL})
SELECT
    d.source_system, d.opportunity_id, d.cutoff, d.account_id, d.industry, d.employees,
    d.amount_reporting, am.typical_amount,
    (epoch(d.cutoff) - epoch(t.last_touch_at)) / 86400.0 AS days_since_touch,
    (epoch(d.cutoff) - epoch(d.created_at)) / 86400.0 AS age_days,
    coalesce(t.touches_30d, 0) AS touches_30d,
    coalesce(t.touches_prev_30d, 0) AS touches_prev_30d,
    v.stage, v.stage_order, sp.first_order, sp.last_order,
    (epoch(d.cutoff) - epoch(v.stage_entered_at)) / 86400.0 AS days_in_stage,
    n.usual_days_in_stage,
    coalesce(v.regressions, 0) AS regressions,
    coalesce(a.account_wins, 0) AS account_wins,
    coalesce(a.account_losses, 0) AS account_losses,
    coalesce(a.account_won_value, 0) AS account_won_value,
    i.industry_recent_win_rate, coalesce(i.industry_recent_closed, 0) AS industry_recent_closed,
    i.industry_longrun_win_rate,
    coalesce(p.close_date_pushes, 0) AS close_date_pushes,
    coalesce(ch.has_close_date_history, false) AS has_close_date_history
FROM deal AS d
LEFT JOIN touch AS t USING (deal_key)
LEFT JOIN visit AS v USING (deal_key)
LEFT JOIN norms AS n ON n.source_system = d.source_system AND n.stage = v.stage
LEFT JOIN span AS sp ON sp.source_system = d.source_system
LEFT JOIN account AS a USING (deal_key)
LEFT JOIN industry AS i
    ON i.source_system = d.source_system AND i.industry = d.industry AND i.cutoff = d.cutoff
LEFT JOIN pushes AS p USING (deal_key)
LEFT JOIN close_history AS ch USING (deal_key)
LEFT JOIN amounts AS am ON am.source_system = d.source_system
ORDER BY d.source_system, d.opportunity_id, d.cutoff
"""


def _load_cutoffs(con: duckdb.DuckDBPyConnection, cutoffs: pd.DataFrame) -> None:
    """The (source_system, opportunity_id, cutoff) rows FEATURES_SQL reads, as a temp table,
    each numbered (deal_key)."""
    con.register("cutoffs_df", cutoffs)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT row_number() OVER () AS deal_key, "
        "source_system, opportunity_id, CAST(cutoff AS TIMESTAMPTZ) AS cutoff FROM cutoffs_df"
    )
    con.unregister("cutoffs_df")


def features_at(con: duckdb.DuckDBPyConnection, cutoffs: pd.DataFrame) -> pd.DataFrame:
    """Features for each (source_system, opportunity_id, cutoff) row of `cutoffs`."""
    _load_cutoffs(con, cutoffs)
    return con.execute(FEATURES_SQL).df()


# Deal rows pandas holds at a time when features are read in chunks (FeatureTable): 13
# signals, their contributions and two reason texts per deal stay a few hundred MB at
# 100,000 deals, whatever the warehouse's size.
CHUNK_ROWS = 100_000


class FeatureTable:
    """features_at kept in a DuckDB temp table and read `chunk_rows` deals at a time.

    At ten million deals the features of every closed (or open) deal at once were GBs in
    pandas beside DuckDB's own memory; in a temp table DuckDB holds them within its memory
    limit (spilling beyond it) and pandas holds one chunk. Rows are in features_at's order
    (the table keeps the order it was written in), so the chunks add up to features_at.
    Use as a context manager: the table is dropped on leaving.

    `carried`: columns of `cutoffs` (one row per deal) each chunk brings along, joined in
    DuckDB (a closed deal's outcome: joining it to each chunk in pandas, on two text keys,
    cost seconds at a million deals).

    `kept_rows`: a table of at most this many deals keeps the chunks it read, and a second
    pass over them reads those instead of querying again (today's open deals are read
    twice: for which signals each source can use, then to be scored).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        cutoffs: pd.DataFrame,
        name: str,
        carried: tuple[str, ...] = (),
        kept_rows: int = 0,
    ):
        self.con, self.name, self.carried = con, name, carried
        self.kept_rows, self._kept = kept_rows, None
        _load_cutoffs(con, cutoffs)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {FEATURES_SQL}")
        if carried:
            con.register("carried_df", cutoffs[["source_system", "opportunity_id", *carried]])
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_carried AS SELECT * FROM carried_df")
            con.unregister("carried_df")
        self.rows = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The table's rows in order, `chunk_rows` at a time (each chunk its own query, so
        other queries may run between them), with the carried columns."""
        select = f"SELECT * FROM {self.name} WHERE rowid >= ? AND rowid < ?"
        if self.carried:
            columns = ", ".join(f"c.{c}" for c in self.carried)
            select = (
                f"SELECT f.*, {columns} FROM {self.name} AS f "
                f"LEFT JOIN {self.name}_carried AS c USING (source_system, opportunity_id) "
                "WHERE f.rowid >= ? AND f.rowid < ? ORDER BY f.rowid"
            )
        if self._kept is not None and self._kept[0] == chunk_rows:
            yield from self._kept[1]
            return
        keep = self.rows <= self.kept_rows
        read = []
        for start in range(0, self.rows, chunk_rows):
            chunk = self.con.execute(select, [start, start + chunk_rows]).df()
            if keep:
                read.append(chunk)
            yield chunk
        if keep:
            self._kept = (chunk_rows, read)

    def __enter__(self) -> FeatureTable:
        return self

    def __exit__(self, *exc) -> None:
        self._kept = None
        self.con.execute(f"DROP TABLE IF EXISTS {self.name}")
        self.con.execute(f"DROP TABLE IF EXISTS {self.name}_carried")


def open_deal_cutoffs(con: duckdb.DuckDBPyConnection, as_of_end) -> pd.DataFrame:
    """Every open deal, scored as of the end of the as-of day."""
    return con.execute(
        "SELECT source_system, opportunity_id, CAST(? AS TIMESTAMPTZ) AS cutoff "
        "FROM marts.opportunities WHERE status = 'open' ORDER BY 1, 2",
        [as_of_end],
    ).df()


# Every closed deal, as it stood $horizon days before it closed (or halfway through its
# life when it was younger than that), with its outcome.
CLOSED_DEAL_CUTOFFS_SQL = """
SELECT source_system, opportunity_id, status AS outcome, closed_at,
    CASE
        WHEN closed_at - to_days(CAST($horizon AS INTEGER)) > created_at
            THEN closed_at - to_days(CAST($horizon AS INTEGER))
        ELSE created_at + (closed_at - created_at) / 2
    END AS cutoff
FROM marts.opportunities
WHERE status IN ('won', 'lost') AND closed_at IS NOT NULL AND closed_at > created_at
"""


def closed_deal_cutoffs(con: duckdb.DuckDBPyConnection, horizon_days: int) -> pd.DataFrame:
    """CLOSED_DEAL_CUTOFFS_SQL's deals, in the order of their ids."""
    return con.execute(f"{CLOSED_DEAL_CUTOFFS_SQL} ORDER BY 1, 2", {"horizon": horizon_days}).df()
