"""Fingerprints of the history a deal's features read before a moment.

A deal's features at a cutoff (scoring.features) read only rows that were known before the
cutoff, and figures every deal is measured against (the usual days in each stage, the
typical amount, the stage span). So what was computed as of a past moment can be kept for
as long as the rows before that moment, those figures and the code stay the same: the
forecast keeps past months of its backtest this way (forecast.backtest_state), scoring
keeps the closed deals it learns from (scoring.past_deals).

The history is hashed as multisets of rows (count and sum of row hashes), each row placed
in the first period whose end it falls before, so one pass per table serves every period:
a period's inputs are the rows of its bucket and of every earlier one, summed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from scoring.features import AMOUNTS_SQL, NORMS_SQL, SPAN_SQL

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class HistoryPart:
    """Rows of one relation that a computation as of a moment reads once they happened
    before it: `moment` says when each row became known (rows with none never count)."""

    name: str
    relation: str
    moment: str
    columns: str


# What the features and the forecast read of the history (scoring.features, forecast.build),
# each part by the moment it became known: a deal's own fields from its creation, its close
# from the close, a stage visit from its entry, the visit's length from its exit.
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

# What every deal's features are measured against, whatever its cutoff: taken whole.
FEATURE_FIGURES = {"norms": NORMS_SQL, "span": SPAN_SQL, "amounts": AMOUNTS_SQL}


def code_digest(folders: Iterable[str], root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over the Python files of `folders` (what a kept result was computed by)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _bucket(moment: str, ends: list[datetime]) -> str:
    """SQL: the index of the first period that ends after `moment` (NULL: after them all)."""
    cases = " ".join(f"WHEN {moment} < $end_{i} THEN {i}" for i in range(len(ends)))
    return f"CASE {cases} END"


def history_buckets(
    con: duckdb.DuckDBPyConnection, part: HistoryPart, ends: list[datetime]
) -> dict[int, list]:
    """Per period bucket of `part`: its row count and the sum of its rows' hashes."""
    params = {f"end_{i}": end for i, end in enumerate(ends)}
    rows = con.execute(
        f"SELECT bucket, count(*), CAST(sum(hash({part.columns})) AS VARCHAR) FROM ("
        f"SELECT {_bucket(part.moment, ends)} AS bucket, * FROM {part.relation}"
        ") WHERE bucket IS NOT NULL GROUP BY 1",
        params,
    ).fetchall()
    return {bucket: [count, total] for bucket, count, total in rows}


def history_before(con: duckdb.DuckDBPyConnection, end: datetime) -> dict[str, list]:
    """Per part of HISTORY: the row count and hash sum of its rows known before `end`."""
    return {part.name: history_buckets(con, part, [end]).get(0, [0, "0"]) for part in HISTORY}


def whole_figures(con: duckdb.DuckDBPyConnection, sqls: Mapping[str, str]) -> dict[str, tuple]:
    """A hash of each whole input (a SELECT) by name: its row count and hash sum."""
    return {
        name: con.execute(
            f"SELECT count(*), CAST(sum(hash(t)) AS VARCHAR) FROM ({sql}) AS t"
        ).fetchall()[0]
        for name, sql in sqls.items()
    }
