"""The one Definitions object of the code location: assets, job, schedule, sensor, resources."""

import dagster as dg

from orchestration.assets.dbt import dbt_resource, warehouse_models
from orchestration.assets.forecast import revenue_forecast
from orchestration.assets.ingestion import raw_tables
from orchestration.assets.reminders import action_items
from orchestration.assets.scoring import crm_writeback, priority_grades
from orchestration.assets.serving import serving_copy
from orchestration.hooks import notify_on_failure, remind_on_success
from orchestration.jobs import daily_job
from orchestration.progress import progress_logger
from orchestration.resources import WarehouseSettings
from orchestration.schedules import daily_schedule
from orchestration.sensors import landing_sensor

defs = dg.Definitions(
    assets=[
        raw_tables,
        warehouse_models,
        priority_grades,
        crm_writeback,
        action_items,
        revenue_forecast,
        serving_copy,
    ],
    jobs=[daily_job],
    schedules=[daily_schedule],
    sensors=[landing_sensor, notify_on_failure, remind_on_success],
    resources={"warehouse": WarehouseSettings(), "dbt": dbt_resource()},
    loggers={"console": dg.colored_console_logger, "progress": progress_logger},
)
