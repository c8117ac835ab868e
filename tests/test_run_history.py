"""Run history: `oppwh run` records its runs in the data folder's Dagster instance, and
`oppwh ui --data-dir` shows them (asked through the UI's own GraphQL endpoint, as the page
does), without the first-visit pop-up, and stops within seconds of SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.e2e

RUNS_QUERY = (
    "{ runsOrError { __typename ... on Runs { results { runId status tags { key value } } } } "
    "shouldShowNux }"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["data"]


def test_runs_of_oppwh_run_are_listed_by_oppwh_ui_which_stops_on_sigterm(built_warehouse, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs"))
    # the run that built the sample warehouse was recorded in its folder
    with dg.DagsterInstance.from_config(str(data / "dagster")) as instance:
        recorded = [r.run_id for r in instance.get_runs()]
        events = len(instance.all_logs(recorded[0])) if recorded else 0
        # the cross-run index the UI's asset pages read: materialisations and check results
        mart = dg.AssetKey(["marts", "opportunities"])
        materialised = instance.get_latest_materialization_event(mart)
        check = next(
            iter(
                instance.event_log_storage.get_asset_check_summary_records(
                    [dg.AssetCheckKey(mart, "not_null_opportunities_opportunity_id")]
                ).values()
            )
        )
    assert len(recorded) == 1 and events > 100, "the run, its logs and materialisations"
    assert materialised is not None and materialised.run_id == recorded[0]
    assert check.last_check_execution_record is not None
    assert check.last_check_execution_record.run_id == recorded[0]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    ui = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "oppwh"),
            "ui",
            "--data-dir",
            str(data),
            "--port",
            str(port),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=(tmp_path / "ui.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        answer = None
        deadline = time.monotonic() + 240  # two busy cores: the UI may take a while to start
        while answer is None and time.monotonic() < deadline:
            try:
                answer = graphql(port, RUNS_QUERY)
            except OSError:
                time.sleep(1)
        assert answer is not None, (tmp_path / "ui.log").read_text()[-3000:]
        runs = answer["runsOrError"]["results"]
        assert [r["runId"] for r in runs] == recorded and runs[0]["status"] == "SUCCESS"
        assert {"key": "oppwh/launched_by", "value": "cli"} in runs[0]["tags"]
        assert answer["shouldShowNux"] is False, "no 'join the community' pop-up"
        stopped_at = time.monotonic()
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=20)
        took = time.monotonic() - stopped_at
    finally:
        if ui.poll() is None:
            ui.kill()
    assert took < 6, f"oppwh ui took {took:.1f} s to stop"
    with pytest.raises(OSError):
        graphql(port, "{ shouldShowNux }")  # nothing of dagster dev is left serving


def test_the_pooled_event_log_answers_which_tables_exist_as_sqlite_does(tmp_path):
    """The run history's event log remembers a table once seen (Dagster asks before every
    asset event); a table not there is asked again, so one created later is found."""
    from warehouse.run_history import PooledSqliteEventLogStorage

    storage = PooledSqliteEventLogStorage(str(tmp_path / "storage"))
    try:
        assert storage.has_table("asset_check_executions")
        assert storage.has_table("asset_check_executions"), "asked again: the same answer"
        assert not storage.has_table("no_such_table")
        with storage.index_connection() as conn:
            conn.exec_driver_sql("CREATE TABLE no_such_table (x INTEGER)")
        assert storage.has_table("no_such_table")
        assert storage.supports_asset_checks
    finally:
        storage.dispose()
