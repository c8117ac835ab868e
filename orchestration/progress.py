"""A Dagster logger for the terminal: one readable line per step, not the engine's chatter.

`oppwh run` selects it through run config; runs started from the UI keep Dagster's
own console logger.
"""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg

# Asset log lines meant for people carry this prefix; the terminal shows only those.
REPORT_PREFIX = "» "

# Where progress goes; the CLI points it at the terminal before it diverts stdout
# (dbt's own chatter) to the run's log file.
PROGRESS_STREAM = None
# Where every record of the run goes in full (DATA_DIR/logs/last_run.log), failures included.
LOG_STREAM = None

# Each step of the daily job: its short name (the benchmark's figures) and its label for
# people (the terminal, in both languages).
STEPS = {
    "raw_tables": ("ingest+quality", "ingest  / 导入"),
    "warehouse_models": ("dbt", "dbt build / 建模与测试"),
    "priority_grades": ("scoring", "scoring / 评分"),
    "exports__crm_writeback": ("export", "write-back / 回写文件"),
    "marts__action_items": ("actions", "action items / 待办"),
    "revenue_forecast": ("forecast", "forecast / 预测"),
    "serving__serving_copy": ("publish", "publish / 发布"),
}
STEP_LABELS = {key: label for key, (_, label) in STEPS.items()}


def report(context: dg.AssetExecutionContext, line: str) -> None:
    """Log a line for people: it shows in the UI and in `oppwh run`'s terminal output."""
    context.log.info(f"{REPORT_PREFIX}{line}")


def step_label(step_key: str | None) -> str:
    return STEP_LABELS.get(step_key or "", step_key or "run")


class ProgressHandler(logging.Handler):
    """Prints step start/finish, asset log lines and failing checks as they happen."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or PROGRESS_STREAM or sys.stdout
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self._log(record)
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key")
        if event is None:
            message = meta.get("orig_message") or record.getMessage()
            if message.startswith(REPORT_PREFIX):
                self._print(f"    {message[len(REPORT_PREFIX) :]}")
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.monotonic()
            self._print(f"▶ {step_label(step)} …")
        elif kind == "STEP_SUCCESS":
            took = time.monotonic() - self.started.get(step, time.monotonic())
            self._print(f"✓ {step_label(step)} ({took:.1f}s)")
        elif kind == "STEP_FAILURE":
            self._print(f"✗ {step_label(step)} failed (why: below)")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                severity = evaluation.severity.value
                self._print(f"    ! {severity} check failed: {evaluation.check_name}")

    def _log(self, record: logging.LogRecord) -> None:
        if LOG_STREAM is None:
            return
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            print(f"{stamp} {record.levelname:<7} {record.getMessage()}", file=LOG_STREAM)
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event")
            error = getattr(getattr(event, "event_specific_data", None), "error", None)
            if error is not None:
                print(error.to_string(), file=LOG_STREAM)
        except (OSError, ValueError):
            pass

    def _print(self, line: str) -> None:
        # Progress is a courtesy: a closed terminal or pipe must never fail the run.
        if self.stream is None:
            return
        try:
            print(line, file=self.stream, flush=True)
        except (OSError, ValueError):
            self.stream = None


@dg.logger(description="Readable step-by-step progress for the oppwh command line.")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger("oppwh.progress")
    logger.handlers = [ProgressHandler()]
    logger.setLevel(logging.DEBUG)  # engine events (step start/finish) are DEBUG
    logger.propagate = False
    return logger
