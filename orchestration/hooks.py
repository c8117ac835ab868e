"""After a run, once the writer lock is free: a failure goes to the team's webhook, a success
sends each owner's action items (reminders).

`oppwh run` posts after the job returns (orchestration.cli); runs the Dagster daemon starts
(schedule, sensor, UI) are posted by these run-status sensors, which run after the run ended.
Runs the command line launched carry the `LAUNCHED_BY_CLI` tag, so a daemon watching the same
instance never posts them a second time.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingestion.config import read_config
from quality.notify import notify_failure
from reminders.step import post_run_reminders
from warehouse.layout import DataFolder

# Tag of the runs `oppwh run` launched (it posts their outcome itself).
LAUNCHED_BY_CLI = {"oppwh/launched_by": "cli"}


def posted_by_the_cli(run) -> bool:
    return LAUNCHED_BY_CLI.items() <= run.tags.items()


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
    if run.job_name != "daily" or posted_by_the_cli(run):
        return
    events = [
        record.get_dagster_event()
        for record in context.instance.all_logs(run.run_id)
        if record.is_dagster_event
    ]
    context.log.info(post_run_failure(data_dir_of(run.run_config), events, run.run_id))


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="remind_on_success",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def remind_on_success(context: dg.RunStatusSensorContext) -> None:
    """Each owner's action items to the team chat after a daemon-started daily run."""
    run = context.dagster_run
    if run.job_name != "daily" or posted_by_the_cli(run):
        return
    context.log.info(post_run_reminders(data_dir_of(run.run_config)) or "no reminders webhook")
