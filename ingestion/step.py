"""Ingestion as one step of the daily job: each function opens its own connection to the
warehouse (warehouse.database), so the Dagster asset only wires them and reports."""

from __future__ import annotations

from pathlib import Path

from ingestion.load import FileOutcome, LoadSettings, load_landing
from ingestion.raw_parquet import export_raw_tables
from ingestion.schema import TABLES
from warehouse.database import Database


def load_into(db: Database, landing: Path, settings: LoadSettings) -> list[FileOutcome]:
    """Every new landing file into raw (each ledgered, loaded whole or not at all)."""
    with db.connect() as con:
        return load_landing(con, landing, settings)


def raw_table_counts(db: Database) -> tuple[dict[str, int], int]:
    """Rows per raw table, and rows in the load ledger."""
    with db.connect() as con:
        counts = {
            name: con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] for name in TABLES
        }
        ledger = con.execute("SELECT count(*) FROM raw.load_ledger").fetchone()[0]
    return counts, ledger


def write_raw_parquet(db: Database, folder: Path) -> dict[str, int]:
    """The raw tables as Parquet for the Spark engine (its dbt sources read them)."""
    with db.connect() as con:
        return export_raw_tables(con, folder)
