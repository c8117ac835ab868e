"""Keep the grades: today's table, the daily history (so trend is known), calibration.

Written by Python into the warehouse's `marts` schema beside the dbt marts, in one
transaction, and idempotent per as-of day: a rerun for the same day replaces that day's
history rows instead of adding to them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import numpy as np
import pandas as pd

from scoring.validation import SIGNAL_COLUMNS, VALIDATION_COLUMNS
from warehouse.database import STATE_SCHEMA, ensure_state_schema, table_exists, transaction

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS marts.opportunity_priority_history (
    source_system VARCHAR, opportunity_id VARCHAR, scored_on DATE,
    score DOUBLE, grade VARCHAR, reasons VARCHAR, model_version VARCHAR, scored_at TIMESTAMPTZ
)"""


# The types of the tables written from frames.
TYPES = {"scoring_signals": SIGNAL_COLUMNS, "scoring_validation": VALIDATION_COLUMNS}


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    columns = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in TYPES[name].items())
    con.register("frame_df", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT {columns} FROM frame_df")
    finally:
        con.unregister("frame_df")


def trends(scores: pd.Series, previous: pd.Series, threshold: float) -> np.ndarray:
    """improving / steady / declining against the previous scoring day, or new."""
    delta = scores.to_numpy(dtype=float) - previous.to_numpy(dtype=float)
    return np.select(
        [np.isnan(delta), delta >= threshold, delta <= -threshold],
        ["new", "improving", "declining"],
        "steady",
    )


# Each deal's newest row of the grade history, kept beside it: the next day's previous grades
# are a read of the deals, not a pass over every day ever scored (a year of a million
# deals' daily grades is 150 million rows). Written in the transaction that writes the
# history, so the two agree.
LATEST_GRADES = f"{STATE_SCHEMA}.latest_grades"
PREVIOUS_FROM_HISTORY = """
SELECT source_system, opportunity_id,
    arg_max(score, scored_on) AS previous_score,
    arg_max(grade, scored_on) AS previous_grade
FROM marts.opportunity_priority_history
WHERE scored_on < ?
GROUP BY 1, 2
"""


def latest_is_current(con: duckdb.DuckDBPyConnection, as_of: date) -> bool:
    """Whether LATEST_GRADES holds each deal's last grade before `as_of`: it was written with
    the newest day of the history, and that day is before `as_of` (the usual next day; a
    rerun for a day already scored, or the first run after an upgrade, reads the history)."""
    newest = con.execute("SELECT max(scored_on) FROM marts.opportunity_priority_history")
    newest = newest.fetchone()[0]
    if newest is None or newest >= as_of or not table_exists(con, LATEST_GRADES):
        return False
    return con.execute(f"SELECT max(scored_on) FROM {LATEST_GRADES}").fetchone()[0] == newest


def previous_grades(con: duckdb.DuckDBPyConnection, as_of: date, fast: bool) -> pd.DataFrame:
    """Each deal's score and grade on the last day it was scored before `as_of`."""
    if fast:
        return con.execute(
            "SELECT source_system, opportunity_id, score AS previous_score, "
            f"grade AS previous_grade FROM {LATEST_GRADES}"
        ).df()
    return con.execute(PREVIOUS_FROM_HISTORY, [as_of]).df()


# Today's grades, as save_priority writes them, in a temp table while it does.
TODAY_TABLE = "todays_grades"


def keep_latest_grades(con: duckdb.DuckDBPyConnection, fast: bool) -> None:
    """LATEST_GRADES after today's rows (TODAY_TABLE) went into the history: today's deals
    replaced in it, or (`fast` False) it made again from the whole history."""
    ensure_state_schema(con)
    if not fast:
        con.execute(
            f"CREATE OR REPLACE TABLE {LATEST_GRADES} AS SELECT source_system, opportunity_id, "
            "max(scored_on) AS scored_on, arg_max(score, scored_on) AS score, "
            "arg_max(grade, scored_on) AS grade FROM marts.opportunity_priority_history "
            "GROUP BY 1, 2"
        )
        return
    con.execute(
        f"DELETE FROM {LATEST_GRADES} WHERE (source_system, opportunity_id) IN "
        f"(SELECT source_system, opportunity_id FROM {TODAY_TABLE})"
    )
    con.execute(
        f"INSERT INTO {LATEST_GRADES} SELECT source_system, opportunity_id, "
        f"CAST(scored_on AS DATE), score, grade FROM {TODAY_TABLE}"
    )


# Every run's validation rows, under the day they were scored (columns as the latest table).
VALIDATION_HISTORY_DDL = (
    "CREATE TABLE IF NOT EXISTS marts.scoring_validation_history (scored_on DATE, "
    + ", ".join(f"{name} {sql_type}" for name, sql_type in VALIDATION_COLUMNS.items())
    + ", scored_at TIMESTAMPTZ)"
)


def save_priority(
    con: duckdb.DuckDBPyConnection,
    scored: pd.DataFrame,
    calibration: pd.DataFrame,
    as_of: date,
    model_version: str,
    trend_threshold: float,
    before_commit=None,
    signals: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Write opportunity_priority, its history, grade_calibration and (when given) the
    scoring_signals and scoring_validation tables; return today's table (with the previous
    grade, for the write-back delta)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(HISTORY_DDL)
    fast = latest_is_current(con, as_of)
    previous = previous_grades(con, as_of, fast)
    today = scored.merge(previous, on=["source_system", "opportunity_id"], how="left")
    today["trend"] = trends(today["score"], today["previous_score"], trend_threshold)
    today["scored_on"] = pd.Timestamp(as_of).date()
    today["scored_at"] = datetime.now(UTC)
    today["model_version"] = model_version
    if "win_probability" not in today:
        today["win_probability"] = np.nan
    # Read from pandas once: the history, the latest grades and today's table each read
    # today's rows, and each scan of pandas' texts (the reasons) cost ~0.3 s at a million deals.
    con.register("today_df", today)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {TODAY_TABLE} AS SELECT * FROM today_df")
    finally:
        con.unregister("today_df")
    con.register("calibration_df", calibration)
    con.execute(VALIDATION_HISTORY_DDL)
    try:
        with transaction(con):
            con.execute(
                "DELETE FROM marts.opportunity_priority_history WHERE scored_on = ?", [as_of]
            )
            con.execute(
                "INSERT INTO marts.opportunity_priority_history SELECT source_system, opportunity_id, "
                f"scored_on, score, grade, reasons, model_version, scored_at FROM {TODAY_TABLE}"
            )
            keep_latest_grades(con, fast)
            con.execute(
                f"""
                CREATE OR REPLACE TABLE marts.opportunity_priority AS
                SELECT t.opportunity_id, t.source_system, o.opportunity_name, o.owner_id, o.owner_name,
                    o.team, o.stage, o.amount_reporting, o.industry,
                    CAST(t.score AS DOUBLE) AS score,
                    CAST(t.win_probability AS DOUBLE) AS win_probability, t.grade, t.reasons, t.trend,
                    CAST(t.previous_grade AS VARCHAR) AS previous_grade,
                    CAST(t.scored_on AS DATE) AS scored_on,
                    CAST(t.scored_at AS TIMESTAMPTZ) AS scored_at, t.model_version
                FROM {TODAY_TABLE} AS t
                JOIN marts.opportunities AS o USING (source_system, opportunity_id)
                ORDER BY t.score DESC, t.opportunity_id
                """
            )
            con.execute(
                "CREATE OR REPLACE TABLE marts.grade_calibration AS SELECT * FROM calibration_df"
            )
            if signals is not None:
                _replace_table(con, "scoring_signals", signals)
            if validation is not None:
                _replace_table(con, "scoring_validation", validation)
                con.execute(
                    "DELETE FROM marts.scoring_validation_history WHERE scored_on = ?", [as_of]
                )
                con.execute(
                    "INSERT INTO marts.scoring_validation_history SELECT CAST(? AS DATE), *, now() "
                    "FROM marts.scoring_validation",
                    [as_of],
                )
            if before_commit is not None:
                before_commit()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {TODAY_TABLE}")
        con.unregister("calibration_df")
    return today
