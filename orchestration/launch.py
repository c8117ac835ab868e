"""Launching the daily job in this process: what `oppwh run`, `oppwh replay` and the
benchmark share, and how a finished run is judged (failed, or steps skipped)."""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path

from orchestration import progress
from orchestration.definitions import defs
from orchestration.hooks import LAUNCHED_BY_CLI, failed_step, post_run_failure
from orchestration.instance import run_history
from orchestration.resources import run_config_for
from warehouse.layout import DataFolder

ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")


def run_daily_job(
    data_dir: Path,
    landing: Path | None,
    as_of: str | None,
    parquet: bool = False,
    archive_mode: str | None = None,
    wait: float | None = None,
    instance=None,
    full_refresh: bool = False,
    engine: str | None = None,
    timezone: str | None = None,
):
    """Execute the `daily` job in this process, recorded in the data folder's run history
    (orchestration.instance) unless an instance is given."""
    run_config = run_config_for(
        data_dir,
        landing,
        as_of,
        parquet,
        archive_mode,
        wait,
        full_refresh=full_refresh,
        engine=engine,
        timezone=timezone,
    )
    run_config["loggers"] = {"progress": {}}
    job = defs.resolve_job_def("daily")
    own_instance = instance is None
    if own_instance:
        instance = run_history(data_dir)
    log_path = DataFolder.at(data_dir).last_run_log
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress.PROGRESS_STREAM = sys.stdout
    with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        # Every event of the run goes to the log too, so a failed run's log says why.
        progress.LOG_STREAM = log
        try:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                raise_on_error=False,
                tags=LAUNCHED_BY_CLI,
            )
        finally:
            progress.LOG_STREAM = None
            if own_instance:
                instance.dispose()
        problem = run_failed(result)
        print(f"run {result.run_id}: {problem or 'succeeded'}", flush=True)
    progress.PROGRESS_STREAM = None
    if not result.success:
        # The job has ended and released the writer lock: a slow webhook holds nothing.
        outcome = post_run_failure(data_dir, result.all_events, result.run_id)
        with log_path.open("a", encoding="utf-8") as log:
            print(outcome, file=log)
    return result


def skipped_steps(result) -> list[str]:
    """Steps Dagster skipped because a step before them did not report every output (a run
    that skips scoring or publishing has not done its job, whatever Dagster calls it)."""
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"]


def run_failed(result) -> str | None:
    """Why the run did not do its whole job, or None when it did."""
    if not result.success:
        return failure_summary(result)
    skipped = skipped_steps(result)
    if skipped:
        return (
            f"steps skipped / 步骤被跳过: {', '.join(skipped)} (a step before them did not "
            "report all its results; see the full log)"
        )
    return None


def failure_summary(result) -> str:
    """Which step failed and why, in one or two lines."""
    step, error = failed_step(result.all_events)
    if not error:
        return "the run failed (see the Dagster logs above)"
    where = f"step {step}" if step != "run" else "the run"
    return f"{where} failed: {ANSI_CODES.sub('', error)}"
