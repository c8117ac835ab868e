"""The command line's fixed reads of the serving copy (the summary after a run, today's
grades). Plain read-only connections, like any BI tool's: a reader holding the serving copy
open in this process keeps its own connection settings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from serving.publish import mart_tables
from warehouse.database import connect


def mart_row_counts(serving: Path) -> dict[str, int]:
    """Rows per published mart, by name."""
    with connect(serving, read_only=True) as con:
        return {
            t: con.execute(f'SELECT count(*) FROM marts."{t}"').fetchone()[0]
            for t in mart_tables(con)
        }


def newest_data_day(serving: Path, timezone: str) -> date | None:
    """The latest local day any deal was created, closed, changed stage or touched."""
    with connect(serving, read_only=True) as con:
        row = con.execute(
            "SELECT CAST(timezone(?, greatest(max(created_at), max(closed_at), "
            "max(current_stage_entered_at), max(last_activity_at))) AS DATE) "
            "FROM marts.opportunities WHERE NOT coalesce(is_created_after_as_of, false)",
            [timezone],
        ).fetchone()
    return row[0] if row else None


def print_grades(serving: Path, top: int) -> list[tuple]:
    """Print deals per grade and the `top` deals by score; return each source's verdict row
    (source, closed deals scored, AUC, better than chance, write-back status, why)."""
    with connect(serving, read_only=True) as con:
        con.sql(
            "SELECT grade, count(*) AS deals, round(avg(score), 1) AS avg_score, "
            "sum(amount_reporting) AS amount FROM marts.opportunity_priority GROUP BY 1 ORDER BY 1"
        ).show()
        con.sql(
            "SELECT opportunity_id, opportunity_name, owner_name, score, grade, trend, reasons "
            "FROM marts.opportunity_priority ORDER BY score DESC LIMIT ?",
            params=[top],
        ).show(max_width=220)
        return con.execute(
            "SELECT source_system, closed_deals_scored, auc, is_better_than_chance, "
            "writeback_status, why FROM marts.scoring_validation ORDER BY 1"
        ).fetchall()
