"""Publish the marts to `serving.duckdb` (serving.publish does the work)."""

import dagster as dg

from orchestration.assets.dbt import MART_KEYS
from orchestration.assets.forecast import FORECAST_KEYS
from orchestration.assets.reminders import ACTION_ITEMS
from orchestration.assets.scoring import SCORING_KEYS
from orchestration.crash import crash_point
from orchestration.resources import WarehouseSettings
from serving.comments import comment_warehouse
from serving.publish import export_parquet, publish_serving_copy

PUBLISHED_KEYS = [*MART_KEYS, *SCORING_KEYS, ACTION_ITEMS, *FORECAST_KEYS]


@dg.asset(
    key=dg.AssetKey(["serving", "serving_copy"]),
    deps=PUBLISHED_KEYS,
    group_name="serving",
    kinds={"duckdb"},
)
def serving_copy(warehouse: WarehouseSettings) -> dg.MaterializeResult:
    """Read-only copy of the marts for dashboards and BI tools (`serving.duckdb`)."""
    comment_warehouse(warehouse.database, warehouse.timezone)
    counts = publish_serving_copy(
        warehouse.warehouse_path,
        warehouse.serving_path,
        warehouse.as_of_date().isoformat(),
        before_swap=lambda: crash_point("publish:before_swap"),
        timezone=warehouse.timezone,
        reuse=not warehouse.full_refresh,
        limits=warehouse.database.limits,
    )
    crash_point("publish:after_swap")
    parquet = (
        export_parquet(warehouse.serving_path, warehouse.folder.parquet)
        if warehouse.parquet
        else []
    )
    return dg.MaterializeResult(
        metadata={
            "parquet_files": len(parquet),
            "path": str(warehouse.serving_path),
            "tables": len(counts),
            "rows_per_mart": dg.MetadataValue.json(counts),
        }
    )
