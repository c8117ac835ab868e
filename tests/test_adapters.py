"""Real CRM exports, each in its own spelling: Salesforce, HubSpot, Chinese CRMs, mappings.

One run loads all three sources into one warehouse (mixed sources), and the marts are
checked against figures worked out by hand from the fixture files in tests/exports.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingestion.config import load_settings
from ingestion.formats import detect_format
from ingestion.load import load_landing
from orchestration.cli import main
from tests.conftest import odd_typed_columns, query
from tests.exports import write_cn_crm, write_csv, write_hubspot, write_salesforce

pytestmark = pytest.mark.e2e

AS_OF = "2025-06-30"
REAL_EXPORT = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "real-exports"
    / "salesforce-data-cloud-workshop"
)


@pytest.fixture(scope="module")
def mixed_warehouse(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("mixed")
    landing = data / "landing"
    write_salesforce(landing)
    write_cn_crm(landing)
    write_hubspot(landing)
    assert main(["run", "--data-dir", str(data), "--as-of", AS_OF]) == 0
    return data


def mart(data: Path, sql: str, params=None):
    return query(data / "serving.duckdb", sql, params)


def by_id(rows):
    return {r[0]: r[1:] if len(r) > 2 else r[1] for r in rows}


def mart_by_id(data: Path, sql: str) -> dict:
    """A query's rows by their first column: {first: second}, or {first: (the rest, ...)}."""
    return by_id(mart(data, sql))


def test_every_file_is_recognised_and_loads_without_rejects(mixed_warehouse):
    ledger = query(
        mixed_warehouse / "warehouse.duckdb",
        "SELECT file_name, format_name, status, rows_rejected FROM raw.load_ledger ORDER BY 1",
    )
    formats = {r[0]: r[1] for r in ledger}
    assert formats == {
        "Opportunity.csv": "salesforce Opportunity",
        "OpportunityHistory.csv": "salesforce OpportunityHistory",
        "Task.csv": "salesforce Task",
        "Event.csv": "salesforce Event",
        "Account.csv": "salesforce Account",
        "User.csv": "salesforce User",
        "商机_20250601.xlsx": "cn_crm 商机",
        "商机_20250602.csv": "cn_crm 商机",
        "商机_20250603.csv": "cn_crm 商机",
        "跟进记录.xlsx": "cn_crm 跟进记录",
        "客户.xlsx": "cn_crm 客户",
        "hubspot-crm-exports-all-deals-2025-06-30.csv": "hubspot deals",
        "engagements.jsonl": "hubspot engagements",
    }
    assert all(r[2] == "loaded" and r[3] == 0 for r in ledger), ledger


def test_salesforce_statuses_amounts_and_deleted_records(mixed_warehouse):
    got = mart_by_id(
        mixed_warehouse,
        "SELECT status, count(*) FROM marts.opportunities "
        "WHERE source_system = 'salesforce' GROUP BY 1",
    )
    assert got == {"won": 1, "lost": 2, "open": 1}
    assert mart(
        mixed_warehouse,
        "SELECT sum(amount) FROM marts.opportunities WHERE "
        "source_system = 'salesforce' AND status = 'won'",
    ) == [(50000,)]
    for table in ("opportunities", "opportunity_lifecycle", "follow_up_frequency", "cycle_time"):
        assert mart(
            mixed_warehouse,
            f"SELECT count(*) FROM marts.{table} WHERE opportunity_id = '006A00000000005AAA'",
        ) == [(0,)]


def test_salesforce_stage_visits_ignore_amount_only_rows(mixed_warehouse):
    visits = mart(
        mixed_warehouse,
        "SELECT stage, is_regression FROM marts.opportunity_lifecycle "
        "WHERE opportunity_id = '006A00000000001AAA' ORDER BY visit_number",
    )
    assert visits == [
        ("Prospecting", False),
        ("Qualification", False),
        ("Proposal/Price Quote", False),
        ("Qualification", True),
        ("Negotiation/Review", False),
        ("Closed Won", False),
    ]
    # D's deleted 'Closed Lost' history row is not a visit; it is still open.
    assert mart(
        mixed_warehouse,
        "SELECT stage, days_in_current_stage FROM marts.opportunities "
        "WHERE opportunity_id = '006A00000000004AAA'",
    ) == [("Negotiation/Review", pytest.approx(29.58, abs=0.01))]
    # its own probability (75%), not the stage's default, weights the pipeline
    assert mart(
        mixed_warehouse,
        "SELECT probability, weighted_amount FROM marts.opportunities "
        "WHERE opportunity_id = '006A00000000004AAA'",
    ) == [(75, 22500)]


def test_salesforce_activities_only_via_opportunity_what_id(mixed_warehouse):
    counts = mart_by_id(
        mixed_warehouse,
        "SELECT opportunity_id, activity_count FROM "
        "marts.follow_up_frequency WHERE source_system = 'salesforce'",
    )
    # A: two tasks + one task + one event (the deleted task does not count); D: two tasks;
    # the account-level tasks count for no deal.
    assert counts == {
        "006A00000000001AAA": 4,
        "006A00000000002AAA": 0,
        "006A00000000003AAA": 0,
        "006A00000000004AAA": 2,
    }


def test_salesforce_cycle_time_loss_reasons_and_merged_account(mixed_warehouse):
    [(days,)] = mart(
        mixed_warehouse,
        "SELECT cycle_time_days FROM marts.cycle_time WHERE opportunity_id = '006A00000000001AAA'",
    )
    assert float(days) == pytest.approx(43.58, abs=0.01)  # 01-02 10:00 to 02-15 (CloseDate)
    reasons = mart_by_id(
        mixed_warehouse,
        "SELECT opportunity_id, loss_reason_category FROM "
        "marts.loss_reasons WHERE source_system = 'salesforce'",
    )
    assert reasons == {"006A00000000002AAA": "price", "006A00000000003AAA": "unspecified"}
    accounts = query(
        mixed_warehouse / "warehouse.duckdb",
        "SELECT count(*) FROM intermediate.int_accounts_deduplicated "
        "WHERE source_system = 'salesforce'",
    )
    assert accounts == [(3,)]
    assert mart(
        mixed_warehouse,
        "SELECT industry FROM marts.opportunities WHERE opportunity_id = '006A00000000001AAA'",
    ) == [("Manufacturing",)]


def test_chinese_daily_exports_grow_a_lifecycle(mixed_warehouse):
    state = mart_by_id(
        mixed_warehouse,
        "SELECT opportunity_id, stage, status, amount, is_no_longer_exported "
        "FROM marts.opportunities WHERE source_system = 'cn_crm'",
    )
    assert state == {
        "S1": ("方案报价", "open", 125000, False),
        "S2": ("初步接触", "open", 8000, False),
        "S3": ("赢单", "won", 8000, True),  # missing from the 6/3 full export: kept, flagged
        "S4": ("输单", "lost", 30000, False),
    }
    visits: dict[str, list] = {}
    for opp, stage, regression in mart(
        mixed_warehouse,
        "SELECT opportunity_id, stage, is_regression FROM marts.opportunity_lifecycle "
        "WHERE source_system = 'cn_crm' ORDER BY opportunity_id, visit_number",
    ):
        visits.setdefault(opp, []).append((stage, regression))
    assert visits == {
        "S1": [("初步接触", False), ("需求确认", False), ("方案报价", False)],
        "S2": [("需求确认", False), ("初步接触", True)],
        "S3": [("方案报价", False), ("赢单", False)],
        "S4": [("初步接触", False), ("输单", False)],
    }
    [(entered,)] = mart(
        mixed_warehouse,
        "SELECT strftime(entered_at, '%Y-%m-%d %H:%M') FROM "
        "marts.opportunity_lifecycle WHERE opportunity_id = 'S1' "
        "AND visit_number = 2",
    )
    assert entered == "2025-06-02 00:00"  # first seen in the 6/2 export


def test_chinese_follow_ups_cycle_time_and_accounts(mixed_warehouse):
    touches = mart_by_id(
        mixed_warehouse,
        "SELECT opportunity_id, activity_count, calls, visits, messages, meetings "
        "FROM marts.follow_up_frequency WHERE source_system = 'cn_crm'",
    )
    assert touches == {
        "S1": (2, 1, 1, 0, 0),
        "S2": (1, 0, 0, 1, 0),
        "S3": (0, 0, 0, 0, 0),
        "S4": (1, 0, 0, 0, 1),
    }
    [(days,)] = mart(
        mixed_warehouse, "SELECT cycle_time_days FROM marts.cycle_time WHERE opportunity_id = 'S4'"
    )
    assert float(days) == pytest.approx(14 / 24, abs=0.01)
    assert mart(
        mixed_warehouse,
        "SELECT loss_reason_category FROM marts.loss_reasons WHERE opportunity_id = 'S4'",
    ) == [("unspecified",)]
    assert mart(
        mixed_warehouse,
        "SELECT industry, employees FROM marts.opportunities WHERE opportunity_id = 'S1'",
    ) == [("制造业", 100)]


def test_chinese_deal_exports_name_the_accounts_no_account_export_names(mixed_warehouse):
    """A 商机 form carries 客户名称 (and, from 6/3, 所属行业): a deal whose account is not in
    the 客户 sheet still shows its account's name and industry; where the 客户 sheet has
    the account, its name and industry win (S1: 制造业 there, 软件 on the deal)."""
    accounts = mart_by_id(
        mixed_warehouse,
        "SELECT opportunity_id, account_name, industry FROM marts.opportunities "
        "WHERE source_system = 'cn_crm'",
    )
    assert accounts == {
        "S1": ("华信科技", "制造业"),
        "S2": ("恒达集团", "金融"),  # blank on the deal: the 客户 sheet's
        "S3": ("新峰制造", None),  # last exported on 6/2, before the form had 所属行业
        "S4": ("长城物流", "物流"),  # not in the 客户 sheet: the deal export's
    }


def test_hubspot_deals_stage_history_and_engagements(mixed_warehouse):
    state = mart_by_id(
        mixed_warehouse,
        "SELECT opportunity_id, status, closed_at IS NOT NULL, expected_close_date::varchar "
        "FROM marts.opportunities WHERE source_system = 'hubspot'",
    )
    assert state == {
        "9001": ("won", True, "2025-03-01"),
        "9002": ("lost", True, "2025-02-15"),
        "9003": ("open", False, "2025-08-01"),
    }
    # 9009 was merged into 9001: it appears in no mart, and 9001 says it absorbed a record.
    assert mart(
        mixed_warehouse,
        "SELECT has_merged_records FROM marts.opportunities WHERE opportunity_id = '9001'",
    ) == [(True,)]
    visits = mart(
        mixed_warehouse,
        "SELECT stage, stages_skipped FROM marts.opportunity_lifecycle "
        "WHERE opportunity_id = '9001' ORDER BY visit_number",
    )
    assert visits == [
        ("Appointment Scheduled", 0),
        ("Qualified To Buy", 0),
        ("Contract Sent", 2),
        ("Closed Won", 0),
    ]
    touches = "SELECT opportunity_id, activity_count FROM marts.follow_up_frequency"
    counts = mart_by_id(mixed_warehouse, f"{touches} WHERE source_system = 'hubspot'")
    assert counts == {"9001": 2, "9002": 0, "9003": 1}
    assert mart(
        mixed_warehouse,
        "SELECT loss_reason_category FROM marts.loss_reasons WHERE opportunity_id = '9002'",
    ) == [("competitor",)]


def test_same_ids_in_two_sources_stay_apart(tmp_path):
    import duckdb

    landing = tmp_path / "landing"
    write_csv(
        landing / "opportunities.csv",
        ["opportunity_id", "created_at", "source_system"],
        [["X1", "2025-01-01", "crm_a"], ["X1", "2025-01-02", "crm_b"]],
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        load_landing(
            con,
            landing,
            load_settings(tmp_path, __import__("datetime").date(2025, 6, 30), "Asia/Shanghai"),
        )
        rows = con.execute(
            "SELECT source_system, opportunity_id FROM raw.opportunities ORDER BY 1"
        ).fetchall()
    assert rows == [("crm_a", "X1"), ("crm_b", "X1")]


def test_unrecognised_file_lists_headers_closest_format_and_missing_columns():
    from ingestion.errors import UnrecognisedFileError

    with pytest.raises(UnrecognisedFileError) as info:
        detect_format(["Id", "StageName", "Amount"], "deals.csv")
    message = str(info.value)
    assert "Id, StageName, Amount" in message
    assert "salesforce Opportunity" in message and "CreatedDate" in message


@pytest.mark.skipif(
    not REAL_EXPORT.exists(), reason="shared/real-exports is not beside this checkout"
)
def test_real_salesforce_export_loads_with_no_rejects(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(REAL_EXPORT, landing)
    assert main(["run", "--data-dir", str(tmp_path), "--as-of", "2024-06-30"]) == 0
    ledger = query(
        tmp_path / "warehouse.duckdb",
        "SELECT file_name, status, rows_read, rows_loaded, rows_rejected "
        "FROM raw.load_ledger ORDER BY 1",
    )
    loaded = {r[0]: r[2:] for r in ledger if r[1] == "loaded"}
    assert loaded == {
        "Account.csv": (22, 22, 0),
        "Opportunity.csv": (50, 50, 0),
        "Task.csv": (75, 75, 0),
    }
    assert query(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM raw.rejects") == [(0,)]
    db = tmp_path / "serving.duckdb"
    assert dict(query(db, "SELECT status, count(*) FROM marts.opportunities GROUP BY 1")) == {
        "open": 35,
        "won": 12,
        "lost": 3,
    }
    # No Task's WhatId points at an Opportunity: no deal has activities.
    assert query(db, "SELECT sum(activity_count) FROM marts.follow_up_frequency") == [(0,)]
    # Its closed deals were all closed before the export created them (flagged, kept): the
    # pipeline at the end of the as-of week holds the 35 open deals, not the closed ones too.
    assert query(db, "SELECT count(*) FROM marts.opportunities WHERE is_closed_before_created") == [
        (15,)
    ]
    assert query(
        db, "SELECT open_at_end FROM marts.pipeline_weekly ORDER BY week_start DESC LIMIT 1"
    ) == [(35,)]
    # No activities exported, so no "no follow-up" items; the passed close dates are.
    assert dict(query(db, "SELECT reason_code, count(*) FROM marts.action_items GROUP BY 1")) == {
        "past_close_date": 23
    }


def test_every_mart_column_of_three_crms_has_a_plain_type(mixed_warehouse):
    assert odd_typed_columns(mixed_warehouse / "serving.duckdb") == []
