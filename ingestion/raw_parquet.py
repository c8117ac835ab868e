"""The canonical raw tables as Parquet, for engines other than DuckDB (Spark) to read.

DuckDB stays the landing store (its transactions keep a failed load from leaving half a
file behind); after a load the raw tables the dbt sources name are written out, one folder
per table, so the same dbt project can build the marts on Spark from exactly the rows
DuckDB holds. Each folder is written aside and renamed into place, so a reader never sees
a half-written table.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

# The raw tables the dbt sources read (rejects stay in DuckDB: only the quality report uses them).
SOURCE_TABLES = (
    "accounts",
    "activities",
    "load_ledger",
    "opportunities",
    "opportunity_snapshots",
    "owners",
    "stage_definitions",
    "stage_history",
    "targets",
)


def _sql_text(path: Path) -> str:
    """A path as a SQL string literal (COPY takes no bound file name)."""
    return "'" + str(path).replace("'", "''") + "'"


def export_raw_tables(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    """Write every raw source table to `folder/<table>/data.parquet`; return rows per table.

    Timestamps with time zone are written as UTC instants (Parquet isAdjustedToUTC), which
    Spark reads as its TIMESTAMP; JSON columns are written as text.
    """
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table in SOURCE_TABLES:
        final = folder / table
        staging = folder / f".{table}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        counts[table] = con.execute(
            f"COPY (SELECT * FROM raw.{table}) TO {_sql_text(staging / 'data.parquet')} "
            "(FORMAT parquet)"
        ).fetchone()[0]
        old = folder / f".{table}.{os.getpid()}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    return counts
