"""Run the daily job every morning in the business time zone, as of that day."""

import dagster as dg

from ingestion.config import read_config
from ingestion.formats.mapping_file import MappingFileError
from orchestration.jobs import daily_job
from orchestration.resources import run_config_for
from warehouse.layout import data_dir_from_env
from warehouse.settings import DEFAULT_TIMEZONE


# The data folder's time zone (oppwh.yml), read when the code location loads: `oppwh ui`
# and the daemon point OPPWH_DATA_DIR at the data folder.
def schedule_timezone() -> str:
    try:
        return read_config(data_dir_from_env()).timezone
    except MappingFileError:  # a broken oppwh.yml fails the run, with its message, not the UI
        return DEFAULT_TIMEZONE


BUSINESS_TIMEZONE = schedule_timezone()


@dg.schedule(
    job=daily_job,
    cron_schedule="0 6 * * *",
    execution_timezone=BUSINESS_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    as_of = context.scheduled_execution_time.date()
    return dg.RunRequest(run_key=f"daily-{as_of}", run_config=run_config_for(as_of=as_of))
