"""Recording quality results as steps of the daily job: each function opens its own
connection to the warehouse (warehouse.database); the Dagster assets only wire them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from quality.report import (
    Freshness,
    ensure_quality_schema,
    landing_freshness,
    record_dbt_results,
    record_export_checks,
    record_freshness,
    render_report,
)
from warehouse.database import Database, open_for_reading


def record_intake(db: Database, run_id: str, as_of: date, outcomes, max_days: int) -> Freshness:
    """The contract results of this run's new files, and whether exports keep arriving."""
    with db.connect() as con:
        ensure_quality_schema(con)
        record_export_checks(con, run_id, as_of, outcomes)
        freshness = landing_freshness(con, as_of, max_days)
        record_freshness(con, run_id, as_of, freshness)
    return freshness


def record_dbt_build(
    db: Database, run_id: str, as_of: date, run_results: dict, manifest: dict
) -> None:
    """Every dbt test of this run's build, failed builds included."""
    with db.connect() as con:
        ensure_quality_schema(con)
        record_dbt_results(con, run_id, as_of, run_results, manifest)


def latest_report(warehouse: Path) -> str:
    """The latest data-quality report, worst first (DatabaseBusyError while a run writes)."""
    with open_for_reading(warehouse) as con:
        return render_report(con)
