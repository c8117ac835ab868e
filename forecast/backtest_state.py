"""Which months of the forecast's backtest can be kept from the last run.

A past month's row of forecast_accuracy is made from what was known at the month's start
and what was won during it. Once the month is over it changes only when the history
before its end changes (a late export, a re-export, a deletion), when the figures every
deal is measured against change (the usual days in each stage, the typical amount, the
signals in use), or when the code or scoring.yml changes. Each month's fingerprint is a
hash of exactly those inputs; a month whose fingerprint matches the one stored with its
rows is copied, the others are computed again. A day that only brings new activities
(the usual next day) recomputes no month; `oppwh run --full-refresh` recomputes them all.

The history is hashed by month (scoring.history: one pass per table serves every month).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

import duckdb

from scoring.config import ScoringConfig
from scoring.history import FEATURE_FIGURES, HISTORY, code_digest, history_buckets, whole_figures
from warehouse.database import STATE_SCHEMA, ensure_state_schema, table_exists

STATE_TABLE = f"{STATE_SCHEMA}.forecast_backtest"
# The code a backtest row is computed by: any change to it recomputes every month.
CODE_FOLDERS = ("forecast", "scoring")


# What every month is measured against, taken whole: the same SQL the features use.
CURRENT = {
    **FEATURE_FIGURES,
    "stages": "SELECT * FROM intermediate.int_stages_resolved",
    "signals": "SELECT source_system, signal, used FROM marts.scoring_signals",
    "activity_sources": "SELECT DISTINCT source_system FROM intermediate.int_opportunity_touches",
}


def month_fingerprints(
    con: duckdb.DuckDBPyConnection,
    months: list[date],
    ends: list[datetime],
    config: ScoringConfig,
    timezone: str,
) -> dict[date, str]:
    """Per past month (oldest first, each ending at `ends`): the hash of every input of
    its backtest row."""
    shared = {
        "code": code_digest(CODE_FOLDERS),
        "scoring": config.content_hash,
        "timezone": timezone,
        "current": whole_figures(con, CURRENT),
    }
    buckets = {part.name: history_buckets(con, part, ends) for part in HISTORY}
    fingerprints = {}
    for index, month in enumerate(months):
        # every row known before the month's end: the same figures whichever months the
        # run looks back over
        history = {
            name: [
                sum(by_bucket[i][0] for i in range(index + 1) if i in by_bucket),
                str(sum(int(by_bucket[i][1]) for i in range(index + 1) if i in by_bucket)),
            ]
            for name, by_bucket in buckets.items()
        }
        text = json.dumps(
            {**shared, "month": month, "history": history}, default=str, sort_keys=True
        )
        fingerprints[month] = hashlib.sha256(text.encode()).hexdigest()
    return fingerprints


def stored_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[date, str]:
    """The fingerprint stored with each month's rows by the last run (none the first time)."""
    if not table_exists(con, STATE_TABLE):
        return {}
    return dict(con.execute(f"SELECT month, fingerprint FROM {STATE_TABLE}").fetchall())


def store_fingerprints(con: duckdb.DuckDBPyConnection, fingerprints: dict[date, str]) -> None:
    """Keep this run's fingerprints with the rows it wrote (inside the forecast's
    transaction, so rows and fingerprints never disagree)."""
    ensure_state_schema(con)
    con.execute(f"CREATE OR REPLACE TABLE {STATE_TABLE} (month DATE, fingerprint VARCHAR)")
    if fingerprints:
        con.executemany(f"INSERT INTO {STATE_TABLE} VALUES (?, ?)", list(fingerprints.items()))
