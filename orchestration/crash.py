"""Named crash points for testing crash safety: `OPPWH_CRASH_AT=<step>` kills the run with
SIGKILL exactly there (no timers, no sleeps). `oppwh run --list-steps` names them."""

from __future__ import annotations

import os
import signal

CRASH_STEPS = {
    "ingest:mid_file": "while a file is being loaded (rows inserted, not committed)",
    "ingest:after_load": "after the landing files are loaded, before the step ends",
    "dbt:mid_build": "while dbt is building the models (after the first model finished)",
    "scoring:mid_save": "while the grades are being written (inside the transaction)",
    "writeback:mid_files": "after the first write-back file, before the others",
    "publish:before_swap": "after the new serving copy is written, before it replaces the old",
    "publish:after_swap": "after the serving copy is replaced, before the run ends",
}


def crash_point(step: str) -> None:
    """SIGKILL this process (and its process group when it leads one, so a dbt child dies
    too, as in a power cut) if OPPWH_CRASH_AT names this step."""
    if os.environ.get("OPPWH_CRASH_AT") != step:
        return
    if step not in CRASH_STEPS:
        raise ValueError(f"unknown crash step {step!r}")
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
