"""The Dagster code location: one Definitions, one connected lineage, job, schedule, sensor."""

from __future__ import annotations

import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.definitions import defs
from orchestration.schedules import daily_schedule
from orchestration.sensors import landing_fingerprint, landing_sensor


def test_definitions_load_with_daily_job_schedule_and_sensor():
    assert defs.resolve_job_def("daily") is not None
    assert defs.resolve_schedule_def("daily_schedule").execution_timezone == "Asia/Shanghai"
    assert defs.resolve_sensor_def("landing_sensor").job_name == "daily"


def test_every_step_of_the_daily_job_is_named_for_people_and_for_the_bench():
    """`oppwh run` prints each step by its label in Chinese and English, and `oppwh bench`
    reports each step's time under its short name: every step of the job has both (the
    forecast's step had neither, and printed as `revenue_forecast`)."""
    from orchestration.progress import STEPS

    steps = set(defs.resolve_job_def("daily").graph.node_names())
    assert steps == set(STEPS)
    assert all(" / " in label and short for short, label in STEPS.values())


def test_one_connected_lineage_from_raw_tables_to_marts_and_serving():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for mart in (
        "opportunities",
        "opportunity_lifecycle",
        "follow_up_frequency",
        "cycle_time",
        "loss_reasons",
    ):
        assert f"marts/{mart}" in keys
    ancestors = {
        k.to_user_string() for k in graph.get(dg.AssetKey(["serving", "serving_copy"])).parent_keys
    }
    assert "marts/opportunities" in ancestors

    def all_ancestors(key):
        seen, todo = set(), [key]
        while todo:
            for parent in graph.get(todo.pop()).parent_keys:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return {k.to_user_string() for k in seen}

    lineage = all_ancestors(dg.AssetKey(["marts", "opportunities"]))
    assert {
        "raw/opportunities",
        "raw/activities",
        "raw/stage_history",
        "raw/accounts",
        "raw/owners",
    } <= lineage


def test_dbt_tests_are_asset_checks():
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert (
        "marts/opportunities",
        "unique_combination_opportunities_source_system__opportunity_id",
    ) in checks
    assert any(key == "marts/loss_reasons" for key, _ in checks)


def test_schedule_runs_as_of_the_scheduled_day_in_business_time_zone():
    moment = datetime(2025, 7, 1, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    context = dg.build_schedule_context(scheduled_execution_time=moment)
    request = daily_schedule(context)
    assert request.run_config["resources"]["warehouse"]["config"]["as_of"] == "2025-07-01"


def test_sensor_waits_for_files_to_settle_then_requests_one_run(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("OPPWH_DATA_DIR", str(tmp_path))
    assert isinstance(landing_sensor(dg.build_sensor_context()), dg.SkipReason)

    fresh = landing / "opportunities.csv"
    fresh.write_text("opportunity_id,created_at\nO1,2025-01-01\n")
    assert landing_fingerprint(landing, time.time()) is None, "still being written"
    assert isinstance(landing_sensor(dg.build_sensor_context()), dg.SkipReason)

    old = time.time() - 120
    os.utime(fresh, (old, old))
    context = dg.build_sensor_context()
    request = landing_sensor(context)
    assert isinstance(request, dg.RunRequest)
    again = landing_sensor(dg.build_sensor_context(cursor=context.cursor))
    assert isinstance(again, dg.SkipReason), "same files, no second run"


def test_a_long_dbt_build_shows_how_far_it_is():
    from orchestration.assets.dbt import DbtProgress

    progress = DbtProgress(4, every_seconds=0)
    lines = [progress.after_event() for _ in range(4)]
    assert lines[:3] == [f"dbt: {n} of 4 models and tests done / 已完成" for n in (1, 2, 3)]
    assert lines[3] is None  # the step's own summary says when all are done


def test_dbt_threads_follow_the_datas_size_unless_set(tmp_path, monkeypatch):
    """Small data: many dbt threads (the build is dbt's per-model work); a million raw rows
    or more: one (one big query already keeps both cores busy). A setting always wins."""
    import duckdb

    from orchestration.resources import WarehouseSettings
    from warehouse.dbt_cli import DBT_THREADS_ENV

    monkeypatch.delenv(DBT_THREADS_ENV, raising=False)
    settings = WarehouseSettings(data_dir=str(tmp_path))
    assert settings.threads == 4  # no warehouse yet: nothing to build but dbt's own work
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.activities AS SELECT range AS id FROM range(10000)")
    assert settings.threads == 4
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("INSERT INTO raw.activities SELECT range FROM range(1000000)")
    assert settings.threads == 1
    assert WarehouseSettings(data_dir=str(tmp_path), dbt_threads=3).threads == 3
    monkeypatch.setenv(DBT_THREADS_ENV, "2")
    assert settings.threads == 2
