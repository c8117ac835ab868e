"""The daily increment: new loads are folded into the incremental models, and the result is
the same as rebuilding everything from every load (`oppwh run --full-refresh`)."""

from __future__ import annotations

import shutil

import pytest

from ingestion.schema import TABLES
from orchestration.cli import main
from tests.conftest import marts_fingerprint, query
from tests.exports import write_csv

pytestmark = pytest.mark.e2e

NEXT_DAY = "2025-07-01"
ACTIVITY_HEADER = TABLES["activities"].column_names  # the native format's headers


def next_day_export(sample_data) -> tuple[list[list[str]], dict[str, str]]:
    """New touches, a re-export that changes the type of an old one, and a deletion."""
    old = [a for a in sample_data.activities if a["opportunity_id"]][:2]
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
    changed, deleted = old
    for row in (
        {**changed, "activity_type": "上门拜访", "is_deleted": "false"},
        {**deleted, "is_deleted": "true"},
    ):
        rows.append([row[k] for k in ACTIVITY_HEADER])
    return rows, {
        "open_deal": open_deal["opportunity_id"],
        "changed": changed["activity_id"],
        "deleted": deleted["activity_id"],
    }


def test_incremental_run_gives_the_same_marts_as_a_full_refresh(
    built_warehouse, sample_data, tmp_path
):
    incremental = tmp_path / "incremental"
    shutil.copytree(built_warehouse, incremental, ignore=shutil.ignore_patterns("*.lock"))
    rows, ids = next_day_export(sample_data)
    landing = tmp_path / "landing"
    write_csv(landing / "activities_2025-07-01.csv", ACTIVITY_HEADER, rows)
    args = ["run", "--landing", str(landing), "--as-of", NEXT_DAY]
    assert main([*args, "--data-dir", str(incremental)]) == 0

    warehouse = incremental / "warehouse.duckdb"
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
    assert marts_fingerprint(refreshed / "serving.duckdb") == marts_fingerprint(
        incremental / "serving.duckdb"
    )
    for table in ("int_activities_latest", "int_opportunity_touches"):
        sql = f"SELECT count(*), sum(hash(COLUMNS(*))) FROM intermediate.{table}"
        assert query(refreshed / "warehouse.duckdb", sql) == query(warehouse, sql), table


def test_full_refresh_is_a_run_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--full-refresh" in capsys.readouterr().out
