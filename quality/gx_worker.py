"""Great Expectations in a second process that starts with the run.

Importing Great Expectations takes ~2.5 s (it pulls in scipy, altair, SQLAlchemy and, with
the spark extra, PySpark): an eighth of a small team's first run, paid on one core while the
other idles. The run's own start (Dagster, dbt) is single-threaded Python of about the same
length, so `oppwh run` starts this worker before it loads the job when the landing folder
holds files GX will check and the run may load (`may_load`): the worker imports GX on the
other core meanwhile, and the new exports' pandas batches are validated there
(`evaluate_with_gx`, the same function the run would call itself). The ingest step stops
it, so it holds no memory while the marts build.

Anything the worker cannot do (it died, or failed in a way the run did not) is done in the
run's own process instead, so a worker never changes a finding or loses an error.

Protocol: pickled requests on the worker's stdin, pickled replies on its stdout (the
worker's own prints go to its stderr), one reply per request, in order.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from ingestion.load import unloaded_files

# Only a file of at most this size can be validated by GX (a load of up to GX_MAX_ROWS rows,
# quality.validate): for landing folders of bigger files alone the worker is not started.
MAX_FILE_BYTES = 64 * 2**20
# How long a stopping worker may take to exit before it is killed.
STOP_SECONDS = 5
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class GxWorkerGone(RuntimeError):
    """The worker could not answer (it exited, or its reply could not be read)."""


class GxWorker:
    """One worker process and the pipes to it."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quality.gx_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
        )

    def call(self, *request):
        """The worker's reply to `request`: ('ok', value) or ('error', kind, details)."""
        try:
            pickle.dump(request, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
            return pickle.load(self.process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as error:
            raise GxWorkerGone(f"the Great Expectations worker stopped: {error}") from error

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self.process.stdout.close()


_worker: GxWorker | None = None


def start(files: Iterable[Path], warehouse: Path, as_of: date) -> bool:
    """Start the worker when this process has not imported GX (a test process or a replay
    imports it once and keeps it) and a run on `as_of` may load one of `files` that GX
    validates (`may_load`); True when one runs."""
    if (
        _worker is None
        and "great_expectations" not in sys.modules
        and may_load(files, warehouse, as_of)
    ):
        start_worker()
    return _worker is not None


# Up to this many bytes of small files are hashed to find whether any is new (~0.2 s here);
# a folder holding more starts the worker unasked, as hashing them would cost more than
# the import it might save (the run hashes every file again when it loads them).
CHECKED_BYTES = 256 * 2**20


def may_load(files: Iterable[Path], warehouse: Path, as_of: date) -> bool:
    """Whether a run on `as_of` may load one of the files of `files` small enough for GX
    (the others are checked in SQL alone): the load ledger of `warehouse` does not show
    it would skip them all."""
    sizes = {f: f.stat().st_size for f in files}
    small = [f for f, size in sizes.items() if size <= MAX_FILE_BYTES]
    if sum(sizes[f] for f in small) > CHECKED_BYTES:
        return bool(small)
    return bool(unloaded_files(warehouse, small, as_of))


def start_worker() -> GxWorker:
    """The worker, started now if none runs."""
    global _worker
    if _worker is None:
        _worker = GxWorker()
    return _worker


def stop() -> None:
    """Stop the worker, if one runs (the ingest step is over)."""
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.stop()


def evaluator(local: Callable) -> Callable:
    """`local` (quality.validate.evaluate_with_gx), run by the worker while one runs: the
    same arguments, the same results, the same GxCheckError. When the worker cannot
    answer, or fails where `local` might not, `local` runs here and has the last word."""

    def evaluate(*args):
        global _worker
        worker = _worker
        if worker is None:
            return local(*args)
        try:
            reply = worker.call(*args)
        except GxWorkerGone:
            _worker = None
            worker.stop()
            return local(*args)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "check_error":
            raise reply[1]
        return local(*args)

    return evaluate


def serve(evaluate: Callable, requests, replies) -> None:
    """The worker's loop: each request's reply, until the run closes the pipe."""
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = ("ok", evaluate(*request))
        except Exception as error:  # noqa: BLE001 - every failure is sent back to the run
            reply = check_error_reply(error) or ("error", type(error).__name__, str(error))
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


def check_error_reply(error: Exception):
    """('check_error', error) for a GxCheckError (the run raises it as its own), else None."""
    from quality.validate import GxCheckError

    return ("check_error", error) if isinstance(error, GxCheckError) else None


def main() -> None:
    """Import GX first (the point of the worker), then answer requests. Replies go to the
    original stdout; anything printed while importing or validating goes to stderr."""
    import warnings

    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Not the import-time warnings of GX's dependencies (PySpark on pandas 3): the run's
    # own import shows none either, its warnings are filtered by then.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations  # noqa: F401 - the import this worker exists for

    from quality.validate import evaluate_with_gx

    serve(evaluate_with_gx, sys.stdin.buffer, replies)
    quit_at_once(replies)


def quit_at_once(replies) -> None:
    """End the worker without the interpreter's teardown: unloading GX's thousands of
    modules and collecting their objects took ~0.6 s, which the run's ingest step waited
    for (it stops the worker, so the worker holds no memory while the marts build). The
    worker keeps nothing that needs closing: its replies are flushed, its files are read."""
    replies.flush()
    sys.stdout.flush()  # the worker's own prints, which go to stderr
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
