"""Start the daily job when new or changed files land in the landing folder."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import dagster as dg

from ingestion.files import landing_files
from orchestration.jobs import daily_job
from warehouse.layout import DataFolder

# A file modified within this many seconds may still be being copied: wait for it.
SETTLE_SECONDS = 30


def landing_fingerprint(
    landing: Path, now: float, settle_seconds: int = SETTLE_SECONDS
) -> str | None:
    """A digest of (name, size, mtime) of settled landing files; None while any is unsettled
    or the folder is empty."""
    files = landing_files(landing)
    if not files:
        return None
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime) for p in files]
    if any(now - mtime < settle_seconds for _, _, mtime in stats):
        return None
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


@dg.sensor(
    job=daily_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def landing_sensor(context: dg.SensorEvaluationContext):
    # Read at evaluation time: `oppwh ui` and the daemon point it at the data folder.
    landing = DataFolder.from_env().landing
    fingerprint = landing_fingerprint(landing, time.time())
    if fingerprint is None or fingerprint == context.cursor:
        return dg.SkipReason(f"no new settled files in {landing}")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=f"landing-{fingerprint}")
