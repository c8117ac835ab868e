"""Run the daily job every morning in the business time zone, as of that day."""

import dagster as dg

from orchestration.jobs import daily_job
from orchestration.resources import run_config_for

BUSINESS_TIMEZONE = "Asia/Shanghai"


@dg.schedule(
    job=daily_job,
    cron_schedule="0 6 * * *",
    execution_timezone=BUSINESS_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    as_of = context.scheduled_execution_time.date()
    return dg.RunRequest(run_key=f"daily-{as_of}", run_config=run_config_for(as_of=as_of))
