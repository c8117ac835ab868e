"""Which dbt nodes a build leaves as they are (warehouse.node_state), on a small manifest
written here: what changes a node's fingerprint, and which nodes are then kept."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import duckdb

from warehouse.node_state import (
    STATE_TABLE,
    cutoff_keys,
    excluded_names,
    indirect_selection,
    kept_nodes,
    node_fingerprints,
    remember_nodes,
)

SHARED = {"settings": {"vars": {}}, "files": "digest"}


def node(uid: str, parents=(), macros=(), schema="staging") -> dict:
    kind, _, name = uid.split(".")
    return {
        "unique_id": uid,
        "resource_type": kind,
        "name": name,
        "schema": schema,
        "alias": name,
        "raw_code": f"select * -- {name}",
        "created_at": 1.0,
        "depends_on": {"nodes": list(parents), "macros": list(macros)},
    }


def manifest() -> dict:
    """Two raw tables; a view on each; a mart measured against the as-of day reading both;
    a seed; a test on the activities view; a test reading the mart and the seed; a model
    reading a table a later Python step writes."""
    nodes = [
        node("model.p.stg_activities", ["source.p.raw.activities"]),
        node("model.p.stg_deals", ["source.p.raw.deals"]),
        node("seed.p.rates"),
        node(
            "model.p.mart",
            ["model.p.stg_activities", "model.p.stg_deals"],
            ["macro.p.days_since"],
            "marts",
        ),
        node("test.p.not_null_activities", ["model.p.stg_activities"]),
        node("test.p.mart_currency_in_rates", ["model.p.mart", "seed.p.rates"]),
        node("model.p.grades_view", ["source.p.scoring.grades"], schema="marts"),
    ]
    return {
        "nodes": {n["unique_id"]: n for n in nodes},
        "sources": {
            "source.p.raw.activities": {"schema": "raw", "identifier": "activities"},
            "source.p.raw.deals": {"schema": "raw", "identifier": "deals"},
            "source.p.scoring.grades": {"schema": "marts", "identifier": "grades"},
        },
        "macros": {
            "macro.p.as_of_date": {"depends_on": {"macros": []}},
            "macro.p.as_of_end": {"depends_on": {"macros": ["macro.p.as_of_date"]}},
            "macro.p.days_since": {"depends_on": {"macros": ["macro.p.as_of_end"]}},
        },
    }


RAW = {"activities": [10, "123"], "deals": [3, "456"]}


def changed(before: dict, after: dict) -> set[str]:
    return {uid.split(".")[-1] for uid in before if before[uid] != after[uid]}


def test_a_fingerprint_follows_only_what_the_node_reads():
    m = manifest()
    first = node_fingerprints(m, RAW, SHARED, "2025-07-01")
    assert first == node_fingerprints(m, RAW, SHARED, "2025-07-01")
    # a parse's timestamp is not an input
    m["nodes"]["model.p.stg_deals"]["created_at"] = 2.0
    assert node_fingerprints(m, RAW, SHARED, "2025-07-01") == first

    next_day = node_fingerprints(m, RAW, SHARED, "2025-07-02")
    # the as-of day reaches the mart through a macro calling a macro, and what reads the mart
    assert changed(first, next_day) == {"mart", "mart_currency_in_rates"}

    new_activities = {**RAW, "activities": [11, "789"]}
    assert changed(first, node_fingerprints(m, new_activities, SHARED, "2025-07-01")) == {
        "stg_activities",
        "not_null_activities",
        "mart",
        "mart_currency_in_rates",
    }

    edited = manifest()
    edited["nodes"]["seed.p.rates"]["raw_code"] = "other rows"
    assert changed(first, node_fingerprints(edited, RAW, SHARED, "2025-07-01")) == {
        "rates",
        "mart_currency_in_rates",
    }
    other_settings = {**SHARED, "settings": {"vars": {"stale_days": 7}}}
    every_measured = {uid.split(".")[-1] for uid, p in first.items() if p}
    assert changed(first, node_fingerprints(m, RAW, other_settings, "2025-07-01")) == (
        every_measured
    )
    # a table written in Python is not measured: never kept
    assert first["model.p.grades_view"] is None


def built(con, m: dict, prints: dict) -> None:
    """Every node of `m` built and passed, as a finished dbt build leaves them."""
    for n in m["nodes"].values():
        if n["resource_type"] != "test":
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {n['schema']}")
            con.execute(f"CREATE OR REPLACE TABLE {n['schema']}.{n['name']} AS SELECT 1 AS x")
    results = [
        {"unique_id": uid, "status": "pass" if uid.startswith("test.") else "success"}
        for uid in m["nodes"]
    ]
    remember_nodes(con, prints, results, "/data/dbt/run-1")


def test_the_next_day_keeps_the_views_and_their_tests_and_rebuilds_the_rest():
    m = manifest()
    con = duckdb.connect()
    built(con, m, node_fingerprints(m, RAW, SHARED, "2025-07-01"))
    kept = kept_nodes(con, m, node_fingerprints(m, RAW, SHARED, "2025-07-02"))
    # rates is read by a test that runs again (it reads the rebuilt mart): the build
    # selects tests cautiously (INDIRECT_SELECTION), so that test runs with the seed kept
    assert excluded_names(m, kept) == [
        "not_null_activities",
        "rates",
        "stg_activities",
        "stg_deals",
    ]
    assert "test.p.mart_currency_in_rates" not in kept
    assert indirect_selection(None, excluding=True) == "cautious"
    # Dagster naming the tests itself (a subset of checks): its choice stands
    assert indirect_selection("empty", excluding=True) == "empty"
    assert indirect_selection(None, excluding=False) is None
    assert kept["test.p.not_null_activities"] == {
        "unique_id": "test.p.not_null_activities",
        "status": "pass",
        "kept_from": "/data/dbt/run-1",
    }
    # the rows of what is about to be built are gone: a build killed half-way claims nothing
    stored = {r[0] for r in con.execute(f"SELECT unique_id FROM {STATE_TABLE}").fetchall()}
    assert stored == set(kept)


def test_a_node_whose_table_is_gone_is_built_again_with_what_reads_it():
    m = manifest()
    con = duckdb.connect()
    prints = node_fingerprints(m, RAW, SHARED, "2025-07-01")
    built(con, m, prints)
    con.execute("DROP TABLE staging.stg_activities")
    kept = kept_nodes(con, m, prints)
    assert excluded_names(m, kept) == ["rates", "stg_deals"]


def test_a_failed_node_is_not_remembered():
    m = manifest()
    con = duckdb.connect()
    prints = node_fingerprints(m, RAW, SHARED, "2025-07-01")
    results = [
        {"unique_id": "model.p.stg_deals", "status": "success"},
        {"unique_id": "model.p.stg_activities", "status": "error"},
        {"unique_id": "test.p.not_null_activities", "status": "skipped"},
    ]
    assert remember_nodes(con, prints, results, "/data/dbt/run-1") == 1
    [(result,)] = con.execute(f"SELECT result FROM {STATE_TABLE}").fetchall()
    assert json.loads(result)["unique_id"] == "model.p.stg_deals"


def end_of(day: str, zone: str = "America/New_York") -> datetime:
    """The instant a day ends in `zone` (what the models call as_of_end)."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), ZoneInfo(zone))


def test_a_model_that_only_cuts_its_dates_at_the_as_of_day_is_kept_until_a_date_falls_in():
    """A model that declares its as-of cutoffs keeps its fingerprint from one day to the
    next while none of its dates falls between them; a model that counts days from the
    as-of day changes every day."""
    m = manifest()
    m["nodes"]["model.p.stg_deals"]["config"] = {}
    cut = node("model.p.deals_then", ["model.p.stg_deals"], ["macro.p.as_of_end"], "marts")
    cut["config"] = {
        "meta": {
            "as_of_cutoffs": [
                {"relation": "stg_deals", "column": "created_at"},
                {"relation": "stg_deals", "column": "export_date"},
                {"relation": "stg_deals", "column": "close_date", "where": "status <> 'open'"},
            ]
        }
    }
    m["nodes"][cut["unique_id"]] = cut
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE staging.stg_deals AS SELECT * FROM (VALUES "
        "(TIMESTAMPTZ '2025-06-29 10:00:00-04', DATE '2025-06-29', DATE '2025-06-30', 'won'),"
        # created on July 2 at 23:30 in New York: already July 3 in UTC
        "(TIMESTAMPTZ '2025-07-02 23:30:00-04', DATE '2025-06-29', NULL, 'open'),"
        # an open deal's expected close date is no cutoff (the where clause leaves it out)
        "(TIMESTAMPTZ '2025-06-01 10:00:00-04', DATE '2025-06-01', DATE '2025-07-05', 'open')"
        ") AS t(created_at, export_date, close_date, status)"
    )

    def prints(day: str) -> dict:
        keys = cutoff_keys(con, m, date.fromisoformat(day), end_of(day))
        return node_fingerprints(m, RAW, SHARED, day, keys)

    assert cutoff_keys(con, m, date(2025, 7, 1), end_of("2025-07-01")) == {
        "model.p.deals_then": [2, 3, 1]
    }
    daily = {"mart", "mart_currency_in_rates"}  # days counted from the as-of day, and its test
    june_30, july_1, july_2 = prints("2025-06-30"), prints("2025-07-01"), prints("2025-07-02")
    assert changed(june_30, july_1) == daily  # no date of the deals falls on July 1
    assert changed(july_1, july_2) == daily | {"deals_then"}  # one deal created on July 2
    assert changed(prints("2025-07-04"), prints("2025-07-05")) == daily
    # a relation not in the warehouse yet: the model counts as reading the day itself
    con.execute("DROP TABLE staging.stg_deals")
    assert cutoff_keys(con, m, date(2025, 7, 1), end_of("2025-07-01")) == {
        "model.p.deals_then": None
    }
    assert changed(prints("2025-06-30"), prints("2025-07-01")) == daily | {"deals_then"}


def test_a_model_reading_no_figure_counted_from_the_as_of_day_is_kept_beside_a_rebuilt_mart():
    """A summary declared as-of independent reads a mart built again every day (its ages
    move) but none of the moving figures: kept from one day to the next, built again when
    the data under the mart changes."""
    m = manifest()
    summary = node("model.p.closed_summary", ["model.p.mart"], schema="marts")
    summary["config"] = {"meta": {"as_of_independent": True}}
    m["nodes"][summary["unique_id"]] = summary
    m["nodes"]["test.p.summary_unique"] = node("test.p.summary_unique", ["model.p.closed_summary"])
    first = node_fingerprints(m, RAW, SHARED, "2025-07-01")
    next_day = node_fingerprints(m, RAW, SHARED, "2025-07-02")
    assert changed(first, next_day) == {"mart", "mart_currency_in_rates"}
    new_deals = node_fingerprints(m, {**RAW, "deals": [4, "999"]}, SHARED, "2025-07-02")
    assert {"closed_summary", "summary_unique"} <= changed(next_day, new_deals)

    con = duckdb.connect()
    built(con, m, first)
    kept = kept_nodes(con, m, next_day)
    assert {"model.p.closed_summary", "test.p.summary_unique"} <= set(kept)
    assert "model.p.mart" not in kept


def test_a_weekly_mart_is_kept_through_its_week_and_built_again_when_a_week_starts():
    """A mart of one row per week up to the as-of week (pipeline_weekly) declares it reads
    the day only as its week: kept from Tuesday to Sunday while its data stays, built again
    on Monday, on a rerun for a day of another week, and when its data changes."""
    m = manifest()
    weekly = node("model.p.weekly", ["model.p.mart"], ["macro.p.as_of_end"], "marts")
    weekly["config"] = {"meta": {"as_of_week": True, "as_of_independent": True}}
    m["nodes"][weekly["unique_id"]] = weekly
    days = {
        day: node_fingerprints(m, RAW, SHARED, day)
        for day in ("2025-06-27", "2025-06-30", "2025-07-01", "2025-07-06", "2025-07-07")
    }
    daily = {"mart", "mart_currency_in_rates"}
    assert changed(days["2025-06-30"], days["2025-07-01"]) == daily  # Monday to Tuesday
    assert changed(days["2025-07-01"], days["2025-07-06"]) == daily  # to Sunday
    assert changed(days["2025-07-06"], days["2025-07-07"]) == daily | {"weekly"}  # Monday
    assert changed(days["2025-07-01"], days["2025-06-27"]) == daily | {"weekly"}  # back
    new_deals = node_fingerprints(m, {**RAW, "deals": [4, "999"]}, SHARED, "2025-07-01")
    assert "weekly" in changed(days["2025-07-01"], new_deals)
    # without the declaration the mart reads the day itself
    weekly["config"] = {}
    assert "weekly" in changed(
        node_fingerprints(m, RAW, SHARED, "2025-07-01"),
        node_fingerprints(m, RAW, SHARED, "2025-07-02"),
    )
