"""One writer at a time: an exclusive lock on DATA_DIR/.oppwh.lock for the whole run.

A kernel lock (flock): a crashed or killed run releases it by dying, so there is never a
stale lock to clean up. Readers of the serving copy never take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from warehouse.layout import LOCK_FILE as LOCK_NAME


class WarehouseBusyError(RuntimeError):
    """Another run (or a backup) is writing this data folder."""


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def acquire(data_dir: Path, wait_seconds: float = 0, purpose: str = "run"):
    """Take the writer lock, waiting up to wait_seconds; returns the open file (keep it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    handle = path.open("a+", encoding="utf-8")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(path)
                handle.close()
                raise WarehouseBusyError(
                    f"another oppwh run is writing {data_dir} ({holder}); it was not started "
                    f"again. Wait for it to finish, or pass --wait SECONDS. / 另一个任务正在写入，"
                    f"请等待其结束后再运行。"
                ) from None
            time.sleep(0.5)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{purpose} pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    handle.flush()
    return handle


def release(handle) -> None:
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def writer_lock(data_dir: Path, wait_seconds: float = 0, purpose: str = "run"):
    handle = acquire(data_dir, wait_seconds, purpose)
    try:
        yield
    finally:
        release(handle)
