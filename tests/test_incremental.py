"""The daily increment: new loads are folded into the incremental models, and the result is
the same as rebuilding everything from every load (`oppwh run --full-refresh`)."""

from __future__ import annotations

import json
import shutil
from unittest.mock import ANY

import duckdb
import pytest

from ingestion.schema import TABLES
from orchestration.cli import main
from tests.conftest import marts_fingerprint, query, run_dbt
from tests.exports import NATIVE_OPPORTUNITY_HEADER, write_csv
from tests.next_day import AS_OF

pytestmark = pytest.mark.e2e

NEXT_DAY = "2025-07-01"
PAST_DAY = "2025-06-20"
LATE_DEAL = "LATE-DEAL-1"
ACTIVITY_HEADER = TABLES["activities"].column_names  # the native format's headers


def next_day_export(sample_data) -> tuple[list[list[str]], dict[str, str]]:
    """New touches, a re-export that changes the type of an old one, and a deletion."""
    old = [a for a in sample_data.activities if a["opportunity_id"]][:3]
    open_deal = next(o for o in sample_data.opportunities if o["status"] == "进行中")
    rows = [
        [
            f"NEXT-{n}",
            open_deal["opportunity_id"],
            open_deal["account_id"],
            open_deal["owner_id"],
            "电话",
            f"2025-07-01 {9 + n}:00:00",
            "60",
            "跟进",
            "false",
        ]
        for n in range(3)
    ]
    changed, deleted, moved = old
    # a touch of a deal the CRM exports only later (LATE_DEAL lands on a later run)
    rows.append(
        [
            "LATE-TOUCH-1",
            LATE_DEAL,
            open_deal["account_id"],
            open_deal["owner_id"],
            "电话",
            "2025-06-10 10:00:00",
            "60",
            "跟进",
            "false",
        ]
    )
    for row in (
        {**changed, "activity_type": "上门拜访", "is_deleted": "false"},
        {**deleted, "is_deleted": "true"},
        # re-exported under another deal: it leaves its old deal's gaps
        {**moved, "opportunity_id": open_deal["opportunity_id"], "is_deleted": "false"},
    ):
        rows.append([row[k] for k in ACTIVITY_HEADER])
    return rows, {
        "open_deal": open_deal["opportunity_id"],
        "changed": changed["activity_id"],
        "deleted": deleted["activity_id"],
    }


def deals_moving_on(sample_data) -> list[list[str]]:
    """Two open deals re-exported the next day: one given to another owner, one won that
    day (its touches become touches before the close)."""
    reassigned, won = [o for o in sample_data.opportunities if o["status"] == "进行中"][1:3]
    other_owner = next(
        o["owner_id"] for o in sample_data.opportunities if o["owner_id"] != reassigned["owner_id"]
    )

    def row(deal: dict, **change: str) -> list[str]:
        return [{**deal, **change}.get(k, "") for k in NATIVE_OPPORTUNITY_HEADER]

    return [
        row(reassigned, owner_id=other_owner),
        row(won, stage="赢单", status="赢单", closed_at="2025-07-01 15:00:00"),
    ]


def test_incremental_run_gives_the_same_marts_as_a_full_refresh(
    built_warehouse, sample_data, tmp_path
):
    incremental = tmp_path / "incremental"
    shutil.copytree(built_warehouse, incremental, ignore=shutil.ignore_patterns("*.lock"))
    rows, ids = next_day_export(sample_data)
    landing = tmp_path / "landing"
    write_csv(landing / "activities_2025-07-01.csv", ACTIVITY_HEADER, rows)
    write_csv(
        landing / "opportunities_2025-07-01.csv",
        NATIVE_OPPORTUNITY_HEADER,
        deals_moving_on(sample_data),
    )
    # an open deal moves to 商务谈判 that day (its stage visits are recomputed, no other's)
    moving = next(
        o
        for o in sample_data.opportunities[4:]
        if o["status"] == "进行中" and o["stage"] != "商务谈判"
    )
    write_csv(
        landing / "stage_history_2025-07-01.csv",
        TABLES["stage_history"].column_names,
        [[moving["opportunity_id"], "商务谈判", "2025-07-01 11:00:00", "false"]],
    )
    args = ["run", "--landing", str(landing), "--as-of", NEXT_DAY]
    assert main([*args, "--data-dir", str(incremental)]) == 0

    warehouse = incremental / "warehouse.duckdb"
    [(last_stage,)] = query(
        warehouse,
        "SELECT stage FROM intermediate.int_stage_visits_collapsed "
        "WHERE opportunity_id = ? AND is_last_visit",
        [moving["opportunity_id"]],
    )
    assert last_stage == "商务谈判"
    latest = dict(
        query(
            warehouse,
            "SELECT activity_id, is_deleted FROM intermediate.int_activities_latest "
            "WHERE activity_id IN (SELECT unnest(?))",
            [[ids["changed"], ids["deleted"]]],
        )
    )
    assert latest == {ids["changed"]: False, ids["deleted"]: True}
    [(kind,)] = query(
        warehouse,
        "SELECT activity_type FROM intermediate.int_activities_deduplicated WHERE activity_id = ?",
        [ids["changed"]],
    )
    assert kind == "visit"
    [(touches_today,)] = query(
        incremental / "serving.duckdb",
        "SELECT touches_last_7_days FROM marts.follow_up_frequency WHERE opportunity_id = ?",
        [ids["open_deal"]],
    )
    assert touches_today >= 3

    refreshed = tmp_path / "refreshed"
    shutil.copytree(incremental, refreshed, ignore=shutil.ignore_patterns("*.lock"))
    assert main(["run", "--data-dir", str(refreshed), "--as-of", NEXT_DAY, "--full-refresh"]) == 0
    assert_same_build(refreshed, incremental)

    # A rerun for a past day, on which the deal of a touch loaded before it lands: the
    # incremental build goes back as a full one does, and counts the touch.
    late = next(o for o in sample_data.opportunities if o["status"] == "进行中")
    late_row = [
        {**late, "opportunity_id": LATE_DEAL, "created_at": "2025-06-01 09:00:00"}.get(k, "")
        for k in NATIVE_OPPORTUNITY_HEADER
    ]
    for side in (incremental, refreshed):
        write_csv(
            tmp_path / f"late_{side.name}" / "opportunities_late.csv",
            NATIVE_OPPORTUNITY_HEADER,
            [late_row],
        )
    args = ["run", "--data-dir", str(incremental), "--as-of", PAST_DAY]
    assert main([*args, "--landing", str(tmp_path / "late_incremental")]) == 0
    args = ["run", "--data-dir", str(refreshed), "--as-of", PAST_DAY, "--full-refresh"]
    assert main([*args, "--landing", str(tmp_path / "late_refreshed")]) == 0
    [(late_touches,)] = query(
        incremental / "warehouse.duckdb",
        "SELECT count(*) FROM intermediate.int_opportunity_touches WHERE opportunity_id = ?",
        [LATE_DEAL],
    )
    assert late_touches == 1
    assert_same_build(refreshed, incremental)


def assert_same_build(refreshed, incremental) -> None:
    """Every mart (as published) and every incremental model, hash for hash."""
    assert marts_fingerprint(refreshed / "serving.duckdb") == marts_fingerprint(
        incremental / "serving.duckdb"
    )
    # (which touches build a follow-up row came from is bookkeeping: a full build has one)
    for table in (
        "int_activities_latest",
        "int_opportunity_touches",
        "int_opportunity_follow_up",
        "int_stage_visits_collapsed",
        "int_stage_visits_collapsed_deals",
    ):
        sql = (
            "SELECT count(*), sum(hash(COLUMNS(lambda c: c <> 'touches_build'))) "
            f"FROM intermediate.{table}"
        )
        assert query(refreshed / "warehouse.duckdb", sql) == query(
            incremental / "warehouse.duckdb", sql
        ), table
    # the live deals and what the touches carry of them (the build numbers differ: a full
    # build numbers every deal 0)
    sql = (
        "SELECT source_system, opportunity_id, carried_hash "
        "FROM intermediate.int_opportunity_touches_deals ORDER BY 1, 2"
    )
    assert query(refreshed / "warehouse.duckdb", sql) == query(
        incremental / "warehouse.duckdb", sql
    )


def test_a_touch_exported_ahead_of_its_day_counts_from_that_day(tmp_path):
    """An activity exported before its date (a visit booked for tomorrow) is no touch until
    its day. The next day, with no new export, the touches are built again for it (their
    as-of cutoff counts it) instead of kept, and equal a full refresh."""
    landing = tmp_path / "landing"
    write_csv(
        landing / "opportunities.csv",
        NATIVE_OPPORTUNITY_HEADER,
        [["D-1", "Deal one", "U1", "初步接触", "进行中", "1000", "2025-06-01 10:00", "", "", "A1"]],
    )
    write_csv(
        landing / "activities.csv",
        ACTIVITY_HEADER,
        [
            ["T-1", "D-1", "A1", "U1", "电话", "2025-06-25 10:00:00", "30", "跟进", "false"],
            ["T-2", "D-1", "A1", "U1", "拜访", "2025-07-01 10:00:00", "60", "拜访", "false"],
        ],
    )
    data = tmp_path / "data"
    args = ["run", "--data-dir", str(data), "--as-of"]
    assert main([*args, "2025-06-30", "--landing", str(landing)]) == 0
    touches = "SELECT activity_id FROM intermediate.int_opportunity_touches ORDER BY 1"
    assert query(data / "warehouse.duckdb", touches) == [("T-1",)]
    assert main([*args, NEXT_DAY]) == 0
    built = {r["unique_id"].split(".")[2] for r in newest_results(data)}
    assert {"int_opportunity_touches", "int_opportunity_follow_up", "follow_up_weekly"} <= built
    assert query(data / "warehouse.duckdb", touches) == [("T-1",), ("T-2",)]
    refreshed = tmp_path / "refreshed"
    shutil.copytree(data, refreshed, ignore=shutil.ignore_patterns("*.lock"))
    assert main(["run", "--data-dir", str(refreshed), "--as-of", NEXT_DAY, "--full-refresh"]) == 0
    assert_same_build(refreshed, data)


def test_full_refresh_is_a_run_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--full-refresh" in capsys.readouterr().out


def test_a_rerun_with_nothing_new_skips_the_build_and_keeps_its_tests(
    next_day_warehouse, tmp_path, capsys
):
    """The same day again with no new export: dbt has nothing to do; the run says so, the
    marts stay, and the quality report still lists the build's tests for this run."""
    data = tmp_path / "data"
    shutil.copytree(next_day_warehouse, data, ignore=shutil.ignore_patterns("*.lock", "logs"))
    before = marts_fingerprint(data / "serving.duckdb")
    builds = sorted(p.name for p in (data / "dbt").iterdir())
    capsys.readouterr()
    assert main(["run", "--data-dir", str(data), "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert "dbt build skipped: nothing changed" in out, out
    assert sorted(p.name for p in (data / "dbt").iterdir()) == builds, "no new dbt build"
    assert marts_fingerprint(data / "serving.duckdb") == before
    runs = query(
        data / "warehouse.duckdb",
        "SELECT run_id, count(*) FILTER (WHERE layer = 'history'), bool_and(passed) "
        "FROM quality.check_results GROUP BY run_id, as_of ORDER BY max(checked_at)",
    )
    (_, built_tests, _), (_, rerun_tests, rerun_passed) = runs[-2:]
    assert rerun_tests == built_tests > 0 and rerun_passed


def test_the_build_fingerprint_follows_every_input(tmp_path):
    """Raw rows, the as-of day (a raw table), the models and the settings each change it."""
    from warehouse.build_state import inputs_fingerprint
    from warehouse.database import Database

    db = Database(tmp_path / "w.duckdb")
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "m.sql").write_text("select 1")
    with db.connect() as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.activities AS SELECT 1 AS id, 'call' AS kind")
        con.execute("CREATE TABLE raw.run_context AS SELECT DATE '2025-07-01' AS as_of_date")
    settings = {"vars": {}, "dbt": "1.11.0", "target": "duckdb"}
    first = inputs_fingerprint(db, project, settings)
    assert inputs_fingerprint(db, project, settings) == first
    changes = []
    with db.connect() as con:
        con.execute("UPDATE raw.activities SET kind = 'visit'")
    changes.append(inputs_fingerprint(db, project, settings))
    with db.connect() as con:
        con.execute("UPDATE raw.run_context SET as_of_date = DATE '2025-07-02'")
    changes.append(inputs_fingerprint(db, project, settings))
    (project / "models" / "m.sql").write_text("select 2")
    changes.append(inputs_fingerprint(db, project, settings))
    changes.append(inputs_fingerprint(db, project, {**settings, "vars": {"stale_days": 7}}))
    assert len({first, *changes}) == 5


def test_raw_figures_hash_each_load_once_and_equal_hashing_every_row(tmp_path):
    """The build's fingerprint of a raw table (its row count and the sum of its rows'
    hashes) is kept per load, so a run hashes only the loads it has not measured: the
    figures stay those of hashing every row through new, removed and widened loads."""
    from warehouse.build_state import LOAD_FIGURES_TABLE, raw_figures
    from warehouse.database import Database

    db = Database(tmp_path / "w.duckdb")

    def every_row() -> dict:
        with db.connect() as con:
            return {
                t: list(
                    con.execute(
                        f"SELECT count(*), CAST(sum(hash(t)) AS VARCHAR) FROM raw.{t} AS t"
                    ).fetchone()
                )
                for t in ("activities", "run_context")
            }

    def load(load_id, n: int) -> None:
        with db.connect() as con:
            con.execute(
                "INSERT INTO raw.activities (id, kind, _load_id) "
                "SELECT 'A-' || i, 'call', ? FROM range(?) AS r(i)",
                [load_id, n],
            )

    with db.connect() as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.activities (id VARCHAR, kind VARCHAR, _load_id BIGINT)")
        con.execute("CREATE TABLE raw.run_context AS SELECT DATE '2025-07-01' AS as_of_date")
    assert raw_figures(db) == every_row() == {"activities": [0, None], "run_context": [1, ANY]}
    load(1, 3)
    load(2, 5)
    assert raw_figures(db) == every_row()
    # Measured once: a load's kept figures are what the next run counts (here, altered).
    with db.connect() as con:
        con.execute(f"UPDATE {LOAD_FIGURES_TABLE} SET hash_sum = hash_sum + 1 WHERE load_id = 1")
    expected = every_row()["activities"]
    assert raw_figures(db)["activities"] == [8, str(int(expected[1]) + 1)]
    with db.connect() as con:
        con.execute(f"UPDATE {LOAD_FIGURES_TABLE} SET hash_sum = hash_sum - 1 WHERE load_id = 1")
    load(3, 2)  # a new load
    assert raw_figures(db) == every_row()
    with db.connect() as con:  # a load gone, one shrunk
        con.execute("DELETE FROM raw.activities WHERE _load_id = 2 OR id = 'A-0'")
    assert raw_figures(db) == every_row()
    with db.connect() as con:  # a column added to the raw table: every row hashes anew
        con.execute("ALTER TABLE raw.activities ADD COLUMN subject VARCHAR")
    assert raw_figures(db) == every_row()
    load(None, 2)  # rows of no load
    assert raw_figures(db) == every_row()
    # loads of 3, 5 and 2 rows; load 2 and the two A-0 gone; 2 rows of no load
    assert raw_figures(db)["activities"][0] == 3 + 5 + 2 - 5 - 2 + 2
    with db.connect() as con:  # every load gone: none of their figures kept
        con.execute("DELETE FROM raw.activities")
    assert raw_figures(db)["activities"] == every_row()["activities"] == [0, None]
    with db.connect() as con:
        assert con.execute(f"SELECT count(*) FROM {LOAD_FIGURES_TABLE}").fetchone() == (0,)


def touch(deal: dict, activity_id: str, occurred_at: str) -> list[str]:
    """A call on `deal` in the native activity export's columns."""
    row = {
        "activity_id": activity_id,
        "opportunity_id": deal["opportunity_id"],
        "account_id": deal["account_id"],
        "owner_id": deal["owner_id"],
        "activity_type": "电话",
        "occurred_at": occurred_at,
        "duration_seconds": "60",
        "subject": "跟进",
        "is_deleted": "false",
    }
    return [row[k] for k in ACTIVITY_HEADER]


def test_a_past_month_of_the_backtest_is_computed_again_only_when_its_history_changes(
    built_warehouse, sample_data, tmp_path, capsys
):
    """The next day brings today's calls and one call dated in April that arrived late.
    As of 2025-07-01 the backtest covers January to June: the months that ended before
    April keep their rows, April to June are computed again (June is new), and the result
    is the same as computing every month again (--full-refresh)."""
    open_deal = next(
        o
        for o in sample_data.opportunities
        if o["status"] == "进行中" and o["created_at"] < "2025-03-01"
    )
    landing = tmp_path / "landing"
    write_csv(
        landing / "activities_2025-07-01.csv",
        ACTIVITY_HEADER,
        [
            touch(open_deal, "LATE-APRIL", "2025-04-10 10:00:00"),
            touch(open_deal, "TODAY-1", "2025-07-01 09:00:00"),
        ],
    )
    incremental = tmp_path / "incremental"
    shutil.copytree(built_warehouse, incremental, ignore=shutil.ignore_patterns("*.lock"))
    capsys.readouterr()
    assert (
        main(
            ["run", "--data-dir", str(incremental), "--landing", str(landing), "--as-of", NEXT_DAY]
        )
        == 0
    )
    assert "backtest months 6 (3 kept from the last run" in capsys.readouterr().out
    kept = ["2025-01-01", "2025-02-01", "2025-03-01"]
    before = query(
        built_warehouse / "warehouse.duckdb",
        "SELECT count(*), sum(hash(a)) FROM marts.forecast_accuracy AS a "
        "WHERE CAST(month AS VARCHAR) IN (SELECT unnest(?))",
        [kept],
    )
    after = query(
        incremental / "warehouse.duckdb",
        "SELECT count(*), sum(hash(a)) FROM marts.forecast_accuracy AS a "
        "WHERE CAST(month AS VARCHAR) IN (SELECT unnest(?))",
        [kept],
    )
    assert after == before and after[0][0] == 3

    refreshed = tmp_path / "refreshed"
    shutil.copytree(incremental, refreshed, ignore=shutil.ignore_patterns("*.lock"))
    assert main(["run", "--data-dir", str(refreshed), "--as-of", NEXT_DAY, "--full-refresh"]) == 0
    assert "(0 kept from the last run" in capsys.readouterr().out
    for sql in (
        "SELECT count(*), sum(hash(a)) FROM marts.forecast_accuracy AS a",
        "SELECT count(*), sum(hash(s)) FROM state.forecast_backtest AS s",
    ):
        assert query(refreshed / "warehouse.duckdb", sql) == query(
            incremental / "warehouse.duckdb", sql
        ), sql


def test_a_next_day_with_no_new_export_keeps_what_did_not_change(built_warehouse, tmp_path, capsys):
    """The day after a first build, with no new file: the staging views, the deduplicated
    activities and their tests are left as they are (their inputs are unchanged),
    everything measured against the as-of day is built again; a kept view that someone
    dropped is built again; the quality report and the asset checks still hold every dbt
    test."""
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("*.lock", "logs"))
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("DROP VIEW staging.stg_raw__owners")
    capsys.readouterr()
    assert main(["run", "--data-dir", str(data), "--as-of", NEXT_DAY]) == 0
    out = capsys.readouterr().out
    assert "kept, inputs unchanged" in out, out

    built_ids = {r["unique_id"] for r in newest_results(data)}
    kept_ids = {r["unique_id"] for r in newest_results(data, "kept_results.json")}
    built, kept = ({uid.split(".")[2] for uid in ids} for ids in (built_ids, kept_ids))
    assert {"stg_raw__activities", "int_activities_latest", "stg_raw__accounts"} <= kept
    assert "not_null_stg_raw__activities_activity_id" in kept
    # No deal was exported, created or closed and no stage entered on July 1: the models
    # that use the as-of day only as a cutoff on those dates stay as they are (counted
    # after the first build, whose staging views did not exist before it).
    assert {
        "int_opportunities_deduplicated",
        "int_stage_history_unioned",
        "int_stage_visits_collapsed",
    } <= kept
    # Closed deals' figures read none of the ages that move with the day: kept beside the
    # opportunities and lifecycle marts they read, which are built again.
    assert {"cycle_time", "cycle_time_summary", "loss_reasons", "funnel_conversion"} <= kept
    # The lifecycle's visits stay, and so do its tests (they read none of the days in the
    # stage); the mart, a view adding those days, is made again.
    assert {
        "int_opportunity_lifecycle",
        "unique_combination_opportunity_lifecycle_source_system__opportunity_id__visit_number",
        "not_null_opportunity_lifecycle_visit_number",
    } <= kept
    assert "opportunity_lifecycle" in built
    # The calendar does not end at the as-of day (its readers cut at it): kept.
    assert {"int_calendar_days", "unique_combination_int_calendar_days_calendar_date"} <= kept
    # No touch falls on July 1 (a Tuesday, the week of June 30): the touches, the follow-up
    # history and the weekly marts stay as they are.
    assert {
        "int_opportunity_touches",
        "int_opportunity_follow_up",
        "follow_up_weekly",
        "pipeline_weekly",
    } <= kept
    assert {"stg_raw__owners", "opportunities", "follow_up_frequency"} <= built
    # the seed stays; the test reading it beside the rebuilt opportunities runs all the same
    assert "currency_rates" in kept
    assert "value_in_seed_opportunities_currency__currency_rates__currency" in built
    assert not built & kept
    [(owners,)] = query(data / "warehouse.duckdb", "SELECT count(*) FROM staging.stg_raw__owners")
    assert owners > 0
    refreshed = tmp_path / "refreshed"
    shutil.copytree(data, refreshed, ignore=shutil.ignore_patterns("*.lock"))
    assert main(["run", "--data-dir", str(refreshed), "--as-of", NEXT_DAY, "--full-refresh"]) == 0
    assert_same_build(refreshed, data)
    for table in ("int_opportunities_deduplicated", "int_stage_visits_collapsed"):
        sql = f"SELECT count(*), sum(hash(COLUMNS(*))) FROM intermediate.{table}"
        assert query(refreshed / "warehouse.duckdb", sql) == query(
            data / "warehouse.duckdb", sql
        ), table

    tests = query(
        data / "warehouse.duckdb",
        "SELECT run_id, count(*) FILTER (WHERE layer = 'history') FROM quality.check_results "
        "GROUP BY run_id ORDER BY max(checked_at)",
    )
    (_, before), (_, after) = tests[-2:]
    assert after == before == len({uid for uid in built_ids | kept_ids if uid[:5] == "test."})


@pytest.fixture(scope="module")
def activities_day(next_day_warehouse, sample_data, tmp_path_factory):
    """The next day as it usually comes (a day of new activities, as of one day later), run
    on a copy of the next-day warehouse, and that folder again with --full-refresh:
    (incremental folder, refreshed folder)."""
    root = tmp_path_factory.mktemp("activities_day")
    data = root / "data"
    shutil.copytree(next_day_warehouse, data, ignore=shutil.ignore_patterns("*.lock", "logs"))
    rows, _ = next_day_export(sample_data)
    landing = root / "landing"
    write_csv(landing / "activities_2025-07-02.csv", ACTIVITY_HEADER, rows)
    assert (
        main(["run", "--data-dir", str(data), "--landing", str(landing), "--as-of", "2025-07-02"])
        == 0
    )
    refreshed = root / "refreshed"
    shutil.copytree(data, refreshed, ignore=shutil.ignore_patterns("*.lock"))
    assert (
        main(["run", "--data-dir", str(refreshed), "--as-of", "2025-07-02", "--full-refresh"]) == 0
    )
    return data, refreshed


def newest_results(data, name: str = "run_results.json") -> list[dict]:
    """The results (or kept results) of the newest dbt build in a data folder."""
    newest = max((data / "dbt").iterdir(), key=lambda p: p.stat().st_mtime)
    return read_json(newest / name)


def test_a_next_day_of_new_activities_alone_keeps_what_reads_no_activity(activities_day):
    """The follow-up marts and everything measured against the day are built again; the
    deals' own description and the marts of closed deals (cycle time, loss reasons, the
    funnel) read no activity and no figure of the day, and are kept, as is the weekly
    pipeline (July 2nd is in the week of July 1st). The build equals a full one."""
    data, refreshed = activities_day
    built = {r["unique_id"].split(".")[2] for r in newest_results(data)}
    kept = {r["unique_id"].split(".")[2] for r in newest_results(data, "kept_results.json")}
    assert {"int_activities_latest", "follow_up_frequency", "opportunities"} <= built
    assert {
        "int_opportunities_described",
        "cycle_time",
        "cycle_time_summary",
        "loss_reasons",
        "funnel_cohorts",
        "pipeline_weekly",
    } <= kept
    assert_same_build(refreshed, data)


def activities_grain_test(data) -> dict:
    """The newest build's result of int_activities_latest's grain test."""
    (result,) = [
        r
        for r in newest_results(data)
        if r["unique_id"].startswith("test.opportunity_warehouse.unique_combination_int_activities")
    ]
    return result


def test_the_activities_grain_test_reads_only_what_the_build_rewrote(activities_day, tmp_path):
    """After a day of new activities the grain test of int_activities_latest checks the
    activities that day's loads brought (tens of millions at scale are not read again), and
    a duplicate among them fails it; after a full refresh it checks every activity."""
    data, refreshed = activities_day
    warehouse = data / "warehouse.duckdb"
    newest_load = query(warehouse, "SELECT max(_load_id) FROM intermediate.int_activities_latest")
    held_before = query(
        warehouse, "SELECT after_load_id FROM intermediate.int_activities_latest_rebuilt"
    )
    assert held_before[0][0] is not None and held_before[0][0] < newest_load[0][0]
    scoped = activities_grain_test(data)
    assert scoped["status"] == "pass"
    assert f"_load_id > {held_before[0][0]}" in scoped["compiled_code"]
    whole = activities_grain_test(refreshed)
    assert whole["status"] == "pass" and "_load_id >" not in whole["compiled_code"]
    assert query(
        refreshed / "warehouse.duckdb",
        "SELECT after_load_id FROM intermediate.int_activities_latest_rebuilt",
    ) == [(None,)]

    # A duplicate of an activity the last build rewrote: the scoped test finds it.
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "INSERT INTO intermediate.int_activities_latest SELECT * FROM "
            "intermediate.int_activities_latest WHERE _load_id = ? LIMIT 1",
            [newest_load[0][0]],
        )
    result = run_dbt(["test", "--select", "int_activities_latest"], copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "FAIL 1 unique_combination_int_activities_latest" in result.stdout


def test_the_ledger_rows_measured_are_the_ones_the_models_read(next_day_warehouse):
    """A model is kept while the raw rows it reads are unchanged: of the load ledger those
    are the staging view's rows (build_state.ROWS_READ must filter as the view does)."""
    from warehouse.build_state import ROWS_READ

    db = next_day_warehouse / "warehouse.duckdb"
    measured = query(db, f"SELECT * FROM raw.load_ledger WHERE {ROWS_READ['load_ledger']}")
    viewed = query(db, "SELECT load_id FROM staging.stg_raw__load_ledger ORDER BY 1")
    everything = query(db, "SELECT count(*) FROM raw.load_ledger")[0][0]
    assert sorted(r[0] for r in measured) == [r[0] for r in viewed]
    assert 0 < len(viewed) < everything  # the sample's other files' rows are not read


def read_json(path) -> list[dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["results"] if isinstance(data, dict) else data


def test_stage_visits_are_recomputed_only_for_the_deals_that_moved(
    built_warehouse, sample_data, tmp_path
):
    """A day on which one deal enters a stage and another is won rewrites the visits of
    those two deals alone: a mark left on another deal's visit stays through the build (it
    was not recomputed), and goes with a full refresh."""
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("*.lock"))
    open_deals = [o for o in sample_data.opportunities if o["status"] == "进行中"]
    moving, won, untouched = open_deals[4], open_deals[5], open_deals[6]
    landing = tmp_path / "landing"
    write_csv(
        landing / "stage_history_2025-07-01.csv",
        TABLES["stage_history"].column_names,
        [[moving["opportunity_id"], "商务谈判", "2025-07-01 11:00:00", "false"]],
    )
    write_csv(
        landing / "opportunities_2025-07-01.csv",
        NATIVE_OPPORTUNITY_HEADER,
        [
            [
                {**won, "stage": "赢单", "status": "赢单", "closed_at": "2025-07-01 15:00:00"}.get(
                    k, ""
                )
                for k in NATIVE_OPPORTUNITY_HEADER
            ]
        ],
    )
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        for deal in (moving, won, untouched):
            con.execute(
                "UPDATE intermediate.int_stage_visits_collapsed SET previous_stage = 'mark' "
                "WHERE opportunity_id = ? AND visit_number = 1",
                [deal["opportunity_id"]],
            )

    def marked() -> set[str]:
        rows = query(
            data / "warehouse.duckdb",
            "SELECT opportunity_id FROM intermediate.int_stage_visits_collapsed "
            "WHERE previous_stage = 'mark'",
        )
        return {r[0] for r in rows}

    assert (
        main(["run", "--data-dir", str(data), "--landing", str(landing), "--as-of", NEXT_DAY]) == 0
    )
    assert marked() == {untouched["opportunity_id"]}
    stages = query(
        data / "warehouse.duckdb",
        "SELECT opportunity_id, stage FROM intermediate.int_stage_visits_collapsed "
        "WHERE is_last_visit AND opportunity_id IN (?, ?) ORDER BY 1",
        [moving["opportunity_id"], won["opportunity_id"]],
    )
    assert dict(stages) == {moving["opportunity_id"]: "商务谈判", won["opportunity_id"]: "赢单"}
    assert main(["run", "--data-dir", str(data), "--as-of", NEXT_DAY, "--full-refresh"]) == 0
    assert marked() == set()
