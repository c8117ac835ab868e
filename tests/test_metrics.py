"""The governed metrics: every core metric from MetricFlow on the serving copy equals the
figure computed here from the marts, overall and by a dimension; `oppwh metrics` lists them and
prints rates with 4 decimals."""

from __future__ import annotations

import csv
import io
import math
import shutil
import statistics

import pytest

from orchestration.cli import main
from serving.metrics import query_metrics
from tests.conftest import query

pytestmark = pytest.mark.e2e
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def serving(built_warehouse, tmp_path_factory):
    data = tmp_path_factory.mktemp("metrics")
    shutil.copy(built_warehouse / "serving.duckdb", data / "serving.duckdb")
    return data


def one(serving, metric: str) -> float:
    [(value,)] = query_metrics(serving / "serving.duckdb", TZ, [metric])[1]
    return float(value)


def test_every_core_metric_equals_the_marts(serving):
    db = serving / "serving.duckdb"
    deals = query(
        db, "SELECT status, amount_reporting, weighted_amount, is_stale FROM marts.opportunities"
    )
    won = [d for d in deals if d[0] == "won"]
    lost = [d for d in deals if d[0] == "lost"]
    open_ = [d for d in deals if d[0] == "open"]
    cycles = [r[0] for r in query(db, "SELECT cycle_time_days FROM marts.cycle_time")]
    weekly = query(
        db, "SELECT week_start, touches FROM marts.follow_up_weekly WHERE activity_type = 'all'"
    )
    expected = {
        "win_rate": len(won) / (len(won) + len(lost)),
        "won_amount": sum(float(d[1] or 0) for d in won),
        "pipeline_amount": sum(float(d[1] or 0) for d in open_),
        "weighted_pipeline": sum(float(d[2] or 0) for d in open_),
        "deals_created": len(deals),
        "cycle_days_median": statistics.median(cycles),
        "touches_per_week": sum(t for _, t in weekly) / len({w for w, _ in weekly}),
        "stale_deal_share": sum(1 for d in open_ if d[3]) / len(open_),
    }
    for metric, value in expected.items():
        assert math.isclose(one(serving, metric), value, rel_tol=1e-9), metric


def test_metrics_by_dimension_equal_the_marts(serving):
    db = serving / "serving.duckdb"
    by_team = dict(query_metrics(db, TZ, ["win_rate"], ["opportunity__team"])[1])
    expected = dict(
        query(
            db,
            "SELECT team, count(*) FILTER (WHERE status = 'won') / count(*) FROM marts.opportunities "
            "WHERE status IN ('won', 'lost') GROUP BY 1",
        )
    )
    assert by_team.keys() == expected.keys()
    assert all(math.isclose(by_team[k], expected[k]) for k in expected)
    lost = dict(
        query_metrics(db, TZ, ["lost_amount"], ["lost_opportunity__loss_reason_category"])[1]
    )
    expected = dict(
        query(
            db,
            "SELECT loss_reason_category, sum(amount_reporting) FROM marts.loss_reasons GROUP BY 1",
        )
    )
    assert lost.keys() == expected.keys()
    assert all(math.isclose(lost[k], float(expected[k])) for k in expected)


def test_deal_metrics_by_grade_equal_the_grades(serving):
    """Grades are written after dbt, by the scoring step; the semantic layer still groups
    any deal metric by them."""
    db = serving / "serving.duckdb"
    grades = query(
        db,
        "SELECT grade, amount_reporting, win_probability FROM marts.opportunity_priority",
    )
    assert {g for g, _, _ in grades} >= {"A", "D"}
    by_grade = dict(query_metrics(db, TZ, ["pipeline_amount"], ["opportunity__grade"])[1])
    expected = {}
    for grade, amount, _ in grades:
        expected[grade] = expected.get(grade, 0.0) + float(amount or 0)
    assert {k: v for k, v in by_grade.items() if k is not None}.keys() == expected.keys()
    assert all(math.isclose(by_grade[k], expected[k]) for k in expected)
    expected_amount = one(serving, "expected_amount")
    assert math.isclose(
        expected_amount, sum(float(a or 0) * float(p or 0) for _, a, p in grades), rel_tol=1e-9
    )


def test_the_metrics_command_lists_and_queries(serving, capsys):
    assert main(["metrics", "list", "--data-dir", str(serving)]) == 0
    listed = capsys.readouterr().out
    for metric in (
        "win_rate",
        "won_amount",
        "pipeline_amount",
        "weighted_pipeline",
        "deals_created",
        "cycle_days_median",
        "touches_per_week",
        "stale_deal_share",
        "lost_amount",
    ):
        assert metric in listed
    args = ["metrics", "query", "--metrics", "win_rate", "--group-by", "opportunity__source_system"]
    assert main([*args, "--data-dir", str(serving)]) == 0
    table = capsys.readouterr().out
    assert "native" in table and any(len(part.strip()) == 6 for part in table.split("|"))  # 0.3046
    assert main([*args, "--format", "csv", "--data-dir", str(serving)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["opportunity__source_system", "win_rate"] and rows[1][0] == "native"
    assert (
        main(["metrics", "query", "--metrics", "no_such_metric", "--data-dir", str(serving)]) == 2
    )
