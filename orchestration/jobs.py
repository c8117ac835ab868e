"""The one daily job: every asset, in one process (DuckDB has one writer at a time)."""

import dagster as dg

daily_job = dg.define_asset_job(
    "daily",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Load new exports, build and test the marts, publish the serving copy.",
)
