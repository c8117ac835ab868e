"""The next day's export on top of the shared sample warehouse: what the reliability and
crash tests share (the export, running `oppwh` as its own process, the crash chain)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_once, marts_fingerprint, run_ok
from tests.exports import NATIVE_OPPORTUNITY_HEADER, write_csv

AS_OF = "2025-07-01"
NEW_EXPORT = (
    NATIVE_OPPORTUNITY_HEADER,
    [
        [
            "NEW-1",
            "新商机 联系人 13812345678 li@example.com",
            "U011",
            "初步接触",
            "进行中",
            "30000",
            "2025-06-30 10:00",
            "",
            "",
            "A00001",
        ],
        [
            "NEW-2",
            "又一个",
            "U012",
            "输单",
            "输单",
            "5000",
            "2025-06-01 10:00",
            "2025-06-30 11:00",
            "价格太高",
            "A00002",
        ],
    ],
)


def oppwh(*args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """`oppwh` as its own process (a crash kills it, not the test runner)."""
    env = {**os.environ}
    env.pop("OPPWH_CRASH_AT", None)
    if crash_at:
        env["OPPWH_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,
    )


def make_base(built_warehouse: Path, root: Path) -> Path:
    """A data folder after one good run, plus a new export waiting in its own folder."""
    shutil.copytree(built_warehouse, root / "data", ignore=shutil.ignore_patterns("logs"))
    write_csv(root / "incoming" / "opportunities_new.csv", *NEW_EXPORT)
    return root


def fresh_copy(base: Path, target: Path) -> Path:
    shutil.copytree(base, target)
    return target


def run_args(data: Path, incoming: Path) -> tuple[str, ...]:
    return ("run", "--data-dir", str(data), "--landing", str(incoming), "--as-of", AS_OF)


def crash_chain(base: Path, root: Path, steps: list[str]) -> tuple[dict[str, dict], dict]:
    """One data folder killed at each of `steps` in turn, in the order a run reaches them,
    then run to the end. Each run after a crash must recover from it and get as far as the
    next step (there it is killed, not failed before it: a run that cannot recover exits 1);
    the run after the last crash must give the marts of an uninterrupted run. Every run is
    its own process, as a user's would be."""
    root = fresh_copy(base, root)
    data, incoming = root / "data", root / "incoming"
    serving = data / "serving.duckdb"
    killed = {}
    for step in steps:
        before = marts_fingerprint(serving)
        crashed = oppwh(*run_args(data, incoming), crash_at=step)
        killed[step] = {
            "crashed": crashed,
            "before": before,
            "after_crash": marts_fingerprint(serving),
        }
    rerun = oppwh(*run_args(data, incoming))
    final = {
        "rerun": rerun,
        "after_rerun": marts_fingerprint(serving),
        "leftovers": list(data.glob(".serving.duckdb.*.tmp")),
    }
    return killed, final


def check_crash(step: str, crashes: tuple[dict[str, dict], dict], reference: dict) -> None:
    """What a kill at `step` must leave, and what the next runs must make of it."""
    killed, final = crashes
    got = killed[step]
    crashed = got["crashed"]
    # Killed at this step: the run got there, past whatever the crash before it left behind.
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout[-2000:] + crashed.stderr[-2000:]
    # The serving copy is always a whole build: the last good one, or (once swapped) the new one.
    assert got["after_crash"] == (reference if step == "publish:after_swap" else got["before"])
    assert final["rerun"].returncode == 0, final["rerun"].stderr[-3000:]
    assert final["after_rerun"] == reference
    assert not final["leftovers"], "no half-written copy left behind"


@pytest.fixture(scope="session")
def next_day_warehouse(built_warehouse, tmp_path_factory) -> Path:
    """The sample warehouse after its next day: NEW_EXPORT dropped into its landing folder
    and run as of AS_OF, once per test run (tests only read it)."""

    def build(data: Path) -> None:
        shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs"))
        write_csv(data / "landing" / "opportunities_new.csv", *NEW_EXPORT)
        run_ok("--data-dir", str(data), "--as-of", AS_OF)

    return build_once(tmp_path_factory, "next_day_warehouse", build)


@pytest.fixture(scope="session")
def reference(next_day_warehouse) -> dict:
    """The marts after an uninterrupted run on the new export."""
    return marts_fingerprint(next_day_warehouse / "serving.duckdb")


# The crash tests' fixtures (tests/test_crash_*.py import them; each module names its STEPS).
@pytest.fixture(scope="module")
def base(built_warehouse, tmp_path_factory) -> Path:
    return make_base(built_warehouse, tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def crashes(request, base, tmp_path_factory):
    return crash_chain(base, tmp_path_factory.mktemp("crash") / "chain", request.module.STEPS)
