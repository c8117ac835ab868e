"""Which months of the forecast's backtest can be kept from the last run.

A past month's row of forecast_accuracy is made from what was known at the month's start
and what was won during it. Once the month is over it changes only when the history
before its end changes (a late export, a re-export, a deletion), when the figures every
deal is measured against change (the usual days in each stage, the typical amount, the
signals in use), or when the code or scoring.yml changes. Each month's fingerprint is a
hash of exactly those inputs; a month whose fingerprint matches the one stored with its
rows is copied, the others are computed again. A day that only brings new activities
(the usual next day) recomputes no month; `oppwh run --full-refresh` recomputes them all.

The history is hashed as multisets of rows (count and sum of row hashes), each row placed
in the first month whose end it falls before, so one pass per table serves every month: a
month's inputs are the rows of its bucket and of every earlier one, summed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from scoring.config import ScoringConfig
from scoring.features import AMOUNTS_SQL, NORMS_SQL, SPAN_SQL
from warehouse.database import table_exists

STATE_SCHEMA = "state"
STATE_TABLE = f"{STATE_SCHEMA}.forecast_backtest"
# The code a backtest row is computed by: any change to it recomputes every month.
CODE_FOLDERS = ("forecast", "scoring")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class HistoryPart:
    """Rows of one relation that a month's backtest reads once they happened before its
    end: `moment` says when each row became known (rows with none never count)."""

    name: str
    relation: str
    moment: str
    columns: str


# What the backtest reads of the history (scoring.features, forecast.build), each part by
# the moment it became known: a deal's own fields from its creation, its close from the
# close, a stage visit from its entry, the visit's length from its exit.
HISTORY = (
    HistoryPart(
        "deals",
        "marts.opportunities",
        "created_at",
        "source_system, opportunity_id, account_id, industry, employees, amount_reporting, "
        "created_at, owner_id, owner_name, team, status <> 'open' AND closed_at IS NULL",
    ),
    HistoryPart(
        "closes",
        "marts.opportunities",
        "closed_at",
        "source_system, opportunity_id, status, closed_at",
    ),
    HistoryPart(
        "touches",
        "intermediate.int_opportunity_touches",
        "occurred_at",
        "source_system, opportunity_id, occurred_at",
    ),
    HistoryPart(
        "visits",
        "marts.opportunity_lifecycle",
        "entered_at",
        "source_system, opportunity_id, visit_number, stage, stage_order, entered_at, "
        "is_regression, is_closing_stage",
    ),
    HistoryPart(
        "exits",
        "marts.opportunity_lifecycle",
        "exited_at",
        "source_system, opportunity_id, visit_number, exited_at, days_in_stage",
    ),
    HistoryPart(
        "snapshots",
        "staging.stg_raw__opportunity_snapshots",
        "CAST(snapshot_date AS TIMESTAMPTZ)",
        "source_system, opportunity_id, snapshot_date, expected_close_date, _load_id",
    ),
)

# What every month is measured against, taken whole: the same SQL the features use.
CURRENT = {
    "norms": NORMS_SQL,
    "span": SPAN_SQL,
    "amounts": AMOUNTS_SQL,
    "stages": "SELECT * FROM intermediate.int_stages_resolved",
    "signals": "SELECT source_system, signal, used FROM marts.scoring_signals",
    "activity_sources": "SELECT DISTINCT source_system FROM intermediate.int_opportunity_touches",
}


def code_digest(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over the Python files the backtest is computed by."""
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _bucket(moment: str, ends: list[datetime]) -> str:
    """SQL: the index of the first month that ends after `moment` (NULL: after them all)."""
    cases = " ".join(f"WHEN {moment} < $end_{i} THEN {i}" for i in range(len(ends)))
    return f"CASE {cases} END"


def history_buckets(
    con: duckdb.DuckDBPyConnection, part: HistoryPart, ends: list[datetime]
) -> dict[int, list]:
    """Per month bucket of `part`: its row count and the sum of its rows' hashes."""
    params = {f"end_{i}": end for i, end in enumerate(ends)}
    rows = con.execute(
        f"SELECT bucket, count(*), CAST(sum(hash({part.columns})) AS VARCHAR) FROM ("
        f"SELECT {_bucket(part.moment, ends)} AS bucket, * FROM {part.relation}"
        ") WHERE bucket IS NOT NULL GROUP BY 1",
        params,
    ).fetchall()
    return {bucket: [count, total] for bucket, count, total in rows}


def current_figures(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """A hash of each whole input every month is measured against."""
    return {
        name: con.execute(
            f"SELECT count(*), CAST(sum(hash(t)) AS VARCHAR) FROM ({sql}) AS t"
        ).fetchone()
        for name, sql in CURRENT.items()
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
        "code": code_digest(),
        "scoring": config.content_hash,
        "timezone": timezone,
        "current": current_figures(con),
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
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(f"CREATE OR REPLACE TABLE {STATE_TABLE} (month DATE, fingerprint VARCHAR)")
    if fingerprints:
        con.executemany(f"INSERT INTO {STATE_TABLE} VALUES (?, ?)", list(fingerprints.items()))
