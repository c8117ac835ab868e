"""Landing folder -> DuckDB schema `raw`: one multi-asset, one materialisation per raw table."""

import dagster as dg
import duckdb

from ingestion.config import load_settings
from ingestion.load import FileOutcome, load_landing
from ingestion.schema import TABLES
from orchestration.progress import report
from orchestration.resources import WarehouseSettings

RAW_KEYS = {name: dg.AssetKey(["raw", name]) for name in TABLES}
LEDGER_KEY = dg.AssetKey(["raw", "load_ledger"])


def outcome_lines(outcomes: list[FileOutcome]) -> list[str]:
    """One human line per landing file: what happened to it and why."""
    lines = []
    for o in outcomes:
        detail = f"{o.rows_loaded}/{o.rows_read} rows -> raw.{o.table}" if o.table else ""
        lines.append(" ".join(p for p in (f"[{o.status}]", o.file_name, detail, o.message) if p))
    return lines


def raw_row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {name: con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] for name in TABLES}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, description=TABLES[name].label, group_name="raw", kinds={"duckdb"})
        for name, key in RAW_KEYS.items()
    ]
    + [
        dg.AssetSpec(
            LEDGER_KEY,
            description="What happened to each landing file, per run",
            group_name="raw",
            kinds={"duckdb"},
        )
    ],
    can_subset=False,
)
def raw_tables(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Load every new file of the landing folder into `raw` (ledgered, whole or nothing)."""
    warehouse.data_path.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        warehouse.data_path, warehouse.as_of_date(), warehouse.business_timezone
    )
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        outcomes = load_landing(con, warehouse.landing_path, settings)
        counts = raw_row_counts(con)
        ledger_rows = con.execute("SELECT count(*) FROM raw.load_ledger").fetchone()[0]
    for line in outcome_lines(outcomes) or ["landing folder holds no files"]:
        report(context, line)
    for name, key in RAW_KEYS.items():
        files = [o for o in outcomes if o.table == name and o.status == "loaded"]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": counts[name],
                "files_loaded": len(files),
                "rows_loaded": sum(o.rows_loaded for o in files),
                "rows_rejected": sum(o.rows_rejected for o in files),
                "landing_report": dg.MetadataValue.md(
                    "\n".join(f"- {line}" for line in outcome_lines(outcomes)) or "(no files)"
                ),
            },
        )
    yield dg.MaterializeResult(
        asset_key=LEDGER_KEY,
        metadata={
            "dagster/row_count": ledger_rows,
            "files_seen": len(outcomes),
            "set_aside": sum(o.status == "set_aside" for o in outcomes),
            "failed": sum(o.status == "failed" for o in outcomes),
        },
    )
