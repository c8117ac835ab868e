"""After a failed run, once the writer lock is free: post the failure to the team's webhook.

`oppwh run` posts after the job returns (orchestration.cli); runs the Dagster daemon starts
(schedule, sensor, UI) are posted by this run-failure sensor, which runs after the run ended.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingestion.config import read_config
from quality.notify import notify_failure
from warehouse.layout import DataFolder


def failed_step(events) -> tuple[str, str]:
    """The first failed step of a run and its error message."""
    for event in events:
        data = event.event_specific_data
        error = getattr(data, "error", None)
        if event.event_type_value in ("STEP_FAILURE", "RESOURCE_INIT_FAILURE") and error:
            cause = error.cause or error
            return event.step_key or "run", cause.message.strip()
    return "run", ""


def post_run_failure(data_dir: Path, events, run_id: str) -> str:
    config = read_config(data_dir)
    step, error = failed_step(events)
    return notify_failure(
        config.webhook_url, config.webhook_format, step, error, str(data_dir), run_id
    )


def data_dir_of(run_config: dict) -> Path:
    settings = run_config.get("resources", {}).get("warehouse", {}).get("config", {})
    folder = (
        DataFolder.at(settings["data_dir"]) if settings.get("data_dir") else DataFolder.from_env()
    )
    return folder.root


@dg.run_failure_sensor(name="notify_on_failure", default_status=dg.DefaultSensorStatus.RUNNING)
def notify_on_failure(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    if run.job_name != "daily":
        return
    events = [
        record.get_dagster_event()
        for record in context.instance.all_logs(run.run_id)
        if record.is_dagster_event
    ]
    context.log.info(post_run_failure(data_dir_of(run.run_config), events, run.run_id))
