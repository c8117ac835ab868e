"""dbt run by dbt's own Python API in a thread of this process, read like a dbt process.

A dbt process costs the daily run a Python start, dbt's imports and its adapter's (~2 s on
a quiet machine, ~5 s on a busy one) before it reads a single file, and on the sample's
next day that is a quarter of the whole dbt step. This process has already imported dbt
(dagster-dbt does), so `dbtRunner` here starts at once. `DbtInThisProcess` has the part of
`subprocess.Popen` dagster-dbt reads (JSON log lines on `stdout`, `wait`, `returncode`,
`args`, `send_signal`), so its translation of dbt's events into Dagster's stays as is.

Only for DuckDB: the Spark profile's session would keep a JVM alive in this process.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence

# dagster-dbt reads dbt's JSON log lines; these are the same settings its dbt process
# gets through the environment (DBT_TARGET_PATH and the like), given here as flags so the
# process-wide environment is not touched.
FLAG_OF_ENV = {
    "DBT_TARGET_PATH": "--target-path",
    "DBT_LOG_PATH": "--log-path",
    "DBT_PROFILES_DIR": "--profiles-dir",
    "DBT_PROJECT_DIR": "--project-dir",
    "DBT_INDIRECT_SELECTION": "--indirect-selection",
}
# Structured events, no second copy on stdout (dagster-dbt prints each event itself); the
# run folder's dbt.log in dbt's plain text, which a person reads, and no terminal colour
# codes in either (dbt writes them into some messages themselves, not only on a console).
FIXED_FLAGS = (
    "--log-format",
    "json",
    "--log-format-file",
    "text",
    "--no-use-colors",
    "--quiet",
    "--no-send-anonymous-usage-stats",
)
# The levels of the events dagster-dbt is given. It reads only the node results, dbt's
# `log()` messages and errors (all info or above) and prints every event it gets into the
# run's log; the debug events (each SQL statement, connection and commit: ~90% of a build's
# events, 1,300 of 1,500 on the sample's next day) stay in dbt.log, not turned into JSON,
# read back and printed a second time.
FORWARDED_LEVELS = frozenset({"info", "warn", "error"})


def in_process_args(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """dbt's arguments without the executable, with the settings dagster-dbt passes its dbt
    process through the environment as flags."""
    flags = [part for key, flag in FLAG_OF_ENV.items() if env.get(key) for part in (flag, env[key])]
    return [*args[1:], *flags, *FIXED_FLAGS]


class EventLines:
    """dbt's events as the JSON lines a dbt process writes, until the command ends."""

    def __init__(self):
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.closed = False

    def put(self, line: bytes | None) -> None:
        self.lines.put(line)

    def __iter__(self) -> Iterator[bytes]:
        while (line := self.lines.get()) is not None:
            yield line

    def __enter__(self) -> EventLines:
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True


class DbtInThisProcess:
    """One dbt command, run by `dbtRunner` in a thread, shaped like the `subprocess.Popen`
    dagster-dbt reads. Exit codes are dbt's: 0 success, 1 a node failed, 2 dbt itself
    failed (the error is in the event lines, as a dbt process would print it)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]):
        self.args = list(args)
        self.stdout = EventLines()
        self.returncode: int | None = None
        self._thread = threading.Thread(
            target=self._invoke, args=(in_process_args(args, env),), name="dbt", daemon=True
        )
        self._thread.start()

    def _invoke(self, args: list[str]) -> None:
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_json

        errors = []

        def forward(msg) -> None:
            level = msg.info.level
            if level == "error":
                errors.append(msg.info.msg)
            if level in FORWARDED_LEVELS:
                self.stdout.put(msg_to_json(msg).encode())

        try:
            outcome = dbtRunner(callbacks=[forward]).invoke(args)
            self.returncode = 0 if outcome.success else (2 if outcome.exception else 1)
            # A wrong argument ends dbt before it logs anything: said here, as dbt would.
            if outcome.exception and not errors:
                self.stdout.put(error_line(outcome.exception))
        except BaseException as error:  # noqa: BLE001 - the error is reported as dbt's own
            self.returncode = 2
            self.stdout.put(error_line(error))
        finally:
            release_duckdb()
            self.stdout.put(None)

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.returncode

    def send_signal(self, _signal) -> None:
        """Stop the query running now (what Ctrl-C does to a dbt process's DuckDB)."""
        environment = duckdb_environment()
        if environment is not None and environment.conn is not None:
            with contextlib.suppress(Exception):
                environment.conn.interrupt()


def error_line(error: BaseException) -> bytes:
    """An error as one of dbt's JSON log lines, so dagster-dbt reports it with the others."""
    return json.dumps(
        {
            "info": {"name": "MainEncounteredError", "level": "error", "msg": str(error)},
            "data": {},
        }
    ).encode()


def duckdb_environment():
    """dbt-duckdb's one database environment of this process (None before dbt opens it)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    return DuckDBConnectionManager._ENV


def release_duckdb() -> None:
    """Close the warehouse file dbt-duckdb keeps open for the process: the steps after dbt
    open it with their own settings, which DuckDB refuses while another handle is open."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = duckdb_environment()
    if environment is not None:
        with contextlib.suppress(Exception):
            environment.close()
    DuckDBConnectionManager.close_all_connections()
