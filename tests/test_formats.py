"""Format details without a full run: mappings, configuration, sheets, JSON lines, inspect."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion.config import load_settings
from ingestion.formats.mapping_file import MappingFileError
from ingestion.load import load_landing
from orchestration.cli import main
from tests.exports import write_csv

AS_OF = date(2025, 6, 30)


def load(data_dir: Path):
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    outcomes = load_landing(
        con, data_dir / "landing", load_settings(data_dir, AS_OF, "Asia/Shanghai")
    )
    return con, {o.file_name: o for o in outcomes}


PIPEDRIVE_MAPPING = """
name: pipedrive deals
source_system: pipedrive
table: opportunities
current_state: true
export: partial
match: [Deal - ID, Deal - Title]
columns:
  opportunity_id: Deal - ID
  opportunity_name: Deal - Title
  created_at: Deal - Deal created
  stage: Deal - Stage
  status: Deal - Status
  amount: [Deal - Value, Value]
  owner_id: Deal - Owner
values:
  status: {Won: won, Lost: lost, Open: open}
  stage: {Qualified: 需求确认, Contact Made: 初步接触}
"""


def test_user_mapping_maps_columns_and_words(tmp_path):
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "pipedrive.yml").write_text(PIPEDRIVE_MAPPING, encoding="utf-8")
    write_csv(
        tmp_path / "landing" / "deals-export.csv",
        [
            "Deal - ID",
            "Deal - Title",
            "Deal - Owner",
            "Deal - Value",
            "Deal - Stage",
            "Deal - Status",
            "Deal - Deal created",
            "Deal - Label",
        ],
        [
            [
                "17",
                "Widget order",
                "Ana",
                "1,200",
                "Qualified",
                "Won",
                "2025-04-01 10:00:00",
                "hot",
            ],
            ["18", "Gadget order", "Ana", "900", "Contact Made", "Open", "2025-05-01 10:00:00", ""],
        ],
    )
    con, outcomes = load(tmp_path)
    outcome = outcomes["deals-export.csv"]
    assert (outcome.status, outcome.format_name, outcome.rows_loaded) == (
        "loaded",
        "mapping pipedrive deals",
        2,
    )
    rows = con.execute(
        "SELECT opportunity_id, stage, status, amount, source_system, extra "
        "FROM raw.opportunities ORDER BY 1"
    ).fetchall()
    assert [r[:5] for r in rows] == [
        ("17", "需求确认", "won", 1200, "pipedrive"),
        ("18", "初步接触", "open", 900, "pipedrive"),
    ]
    assert json.loads(rows[0][5]) == {"Deal - Label": "hot"}
    assert con.execute("SELECT count(*) FROM raw.opportunity_snapshots").fetchone() == (2,)
    [(kind,)] = con.execute("SELECT export_kind FROM raw.load_ledger").fetchall()
    assert kind == "partial"


def test_a_mapping_reads_amounts_with_a_decimal_comma(tmp_path):
    """A German CRM's export (semicolons, amounts like 1.234,56 € and 8 000,50): with
    `decimal_comma: true` its amounts load as written, the values worked out by hand; an
    amount written the other way (1,234.56) is a reject naming column and value, not a guess."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "de.yml").write_text(
        "name: de crm\nsource_system: de_crm\ntable: opportunities\n"
        "match: [Vorgangsnummer, Betrag]\ndecimal_comma: true\n"
        "columns:\n  opportunity_id: Vorgangsnummer\n  opportunity_name: Name\n"
        "  amount: Betrag\n  created_at: Angelegt am\n",
        encoding="utf-8",
    )
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "vorgaenge.csv").write_text(
        "Vorgangsnummer;Name;Betrag;Angelegt am\n"
        "V1;Maschine;1.234,56 €;05.03.2025 14:20\n"
        "V2;Wartung;12,5;05.03.2025\n"
        'V3;Anlage;"8\u00a0000,50";2025-03-05\n'
        "V4;Ersatzteile;1.234;2025-03-05\n"
        "V5;Import;1,234.56;2025-03-05\n",
        encoding="utf-8",
    )
    con, outcomes = load(tmp_path)
    outcome = outcomes["vorgaenge.csv"]
    assert (outcome.format_name, outcome.rows_loaded, outcome.rows_rejected) == (
        "mapping de crm",
        4,
        1,
    )
    assert con.execute(
        "SELECT opportunity_id, amount, strftime(created_at, '%Y-%m-%d %H:%M') "
        "FROM raw.opportunities ORDER BY 1"
    ).fetchall() == [
        ("V1", Decimal("1234.56"), "2025-03-05 14:20"),
        ("V2", Decimal("12.50"), "2025-03-05 00:00"),
        ("V3", Decimal("8000.50"), "2025-03-05 00:00"),
        ("V4", Decimal("1234.00"), "2025-03-05 00:00"),
    ]
    [(column, value, reason)] = con.execute(
        "SELECT column_name, value, reason FROM raw.rejects"
    ).fetchall()
    assert (column, value) == ("Betrag", "1,234.56") and "decimal comma" in reason


def test_broken_mapping_names_file_and_key(tmp_path):
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "bad.yml").write_text(
        "name: x\ntable: opportunities\ncolumns:\n  opportunity_id: ID\n  colour: C\n", "utf-8"
    )
    with pytest.raises(MappingFileError, match=r"bad\.yml: columns\.colour is not a column"):
        load_settings(tmp_path, AS_OF, "Asia/Shanghai")


def test_salesforce_loss_reason_field_is_one_line_of_configuration(tmp_path):
    (tmp_path / "oppwh.yml").write_text("salesforce:\n  loss_reason_field: Why_We_Lost__c\n")
    write_csv(
        tmp_path / "landing" / "Opportunity.csv",
        ["Id", "Name", "StageName", "CreatedDate", "IsClosed", "IsWon", "Why_We_Lost__c"],
        [["006X1", "A", "Closed Lost", "2025-01-01T00:00:00.000+0000", "true", "false", "太贵了"]],
    )
    con, _ = load(tmp_path)
    assert con.execute("SELECT status, loss_reason FROM raw.opportunities").fetchall() == [
        ("lost", "太贵了")
    ]


def test_common_salesforce_loss_reason_fields_work_out_of_the_box(tmp_path):
    write_csv(
        tmp_path / "landing" / "Opportunity.csv",
        ["Id", "Name", "StageName", "CreatedDate", "Closed_Lost_Reason__c"],
        [["006X1", "A", "Closed Lost", "2025-01-01T00:00:00.000+0000", "Competitor"]],
    )
    con, _ = load(tmp_path)
    assert con.execute("SELECT loss_reason FROM raw.opportunities").fetchall() == [("Competitor",)]


def test_salesforce_opportunity_stage_and_field_history(tmp_path):
    write_csv(
        tmp_path / "landing" / "OpportunityStage.csv",
        [
            "Id",
            "MasterLabel",
            "ApiName",
            "IsActive",
            "SortOrder",
            "IsClosed",
            "IsWon",
            "DefaultProbability",
        ],
        [
            ["01J1", "Verbal Commit", "Verbal Commit", "true", "9", "false", "false", "90"],
            ["01J2", "Signed", "Signed", "true", "10", "true", "true", "100"],
        ],
    )
    write_csv(
        tmp_path / "landing" / "OpportunityFieldHistory.csv",
        ["Id", "OpportunityId", "CreatedDate", "Field", "OldValue", "NewValue", "DataType"],
        [
            [
                "017A",
                "006X1",
                "2025-01-02T00:00:00.000+0000",
                "StageName",
                "Prospecting",
                "Verbal Commit",
                "Picklist",
            ],
            ["017B", "006X1", "2025-01-03T00:00:00.000+0000", "Amount", "100", "200", "Currency"],
            [
                "017C",
                "006X1",
                "2025-01-04T00:00:00.000+0000",
                "StageName",
                "Verbal Commit",
                "Signed",
                "Picklist",
            ],
        ],
    )
    con, outcomes = load(tmp_path)
    assert con.execute(
        "SELECT stage, stage_order, is_closed, is_won FROM raw.stage_definitions ORDER BY 2"
    ).fetchall() == [("Verbal Commit", 9, False, False), ("Signed", 10, True, True)]
    history = outcomes["OpportunityFieldHistory.csv"]
    assert (history.rows_read, history.rows_loaded, history.rows_ignored) == (3, 2, 1)
    assert con.execute("SELECT stage FROM raw.stage_history ORDER BY entered_at").fetchall() == [
        ("Verbal Commit",),
        ("Signed",),
    ]


def test_workbook_with_several_sheets_and_merged_header_cells(tmp_path):
    from openpyxl import Workbook

    path = tmp_path / "landing" / "导出.xlsx"
    path.parent.mkdir(parents=True)
    book = Workbook()
    sheet = book.active
    sheet.title = "商机"
    sheet.append(["商机编号", "商机名称", "创建时间", "预计成交金额", "", "备注"])
    sheet.merge_cells("D1:E1")
    sheet.append(["B1", "试点", "2025-01-01", "2万", "x", "注"])
    notes = book.create_sheet("说明")
    notes.append(["本文件由系统导出"])
    notes.append(["请勿修改"])
    book.save(path)
    con, outcomes = load(tmp_path)
    assert outcomes["导出.xlsx » 商机"].status == "loaded"
    assert outcomes["导出.xlsx » 说明"].status == "set_aside"
    assert con.execute(
        "SELECT opportunity_id, amount, extra FROM raw.opportunities"
    ).fetchall() == [("B1", 20000, '{"column_5":"x","备注":"注"}')]


def test_json_lines_activity_log_with_duplicates(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    lines = [
        {
            "activity_id": "a1",
            "opportunity_id": "O1",
            "activity_type": "微信",
            "occurred_at": "2025-06-01 10:00",
        },
        {
            "activity_id": "a1",
            "opportunity_id": "O1",
            "activity_type": "微信",
            "occurred_at": "2025-06-01 10:00",
        },
        {
            "activity_id": "a2",
            "opportunity_id": "O1",
            "activity_type": "拜访",
            "occurred_at": "not a time",
            "meta": {"via": "app"},
        },
    ]
    (landing / "activity_log.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
    )
    con, outcomes = load(tmp_path)
    outcome = outcomes["activity_log.jsonl"]
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (
        "loaded",
        3,
        2,
        1,
    )
    assert con.execute("SELECT row_number, column_name, value FROM raw.rejects").fetchall() == [
        (4, "occurred_at", "not a time")
    ]


def test_current_state_export_is_a_new_snapshot_each_day_but_not_twice_a_day(tmp_path):
    landing = tmp_path / "landing"
    write_csv(
        landing / "商机.csv",
        ["商机编号", "创建时间", "销售阶段"],
        [["C1", "2025-06-01", "初步接触"]],
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    for day, expected in (
        (date(2025, 6, 1), "loaded"),
        (date(2025, 6, 1), "skipped"),
        (date(2025, 6, 2), "loaded"),
    ):
        [outcome] = load_landing(con, landing, load_settings(tmp_path, day, "Asia/Shanghai"))
        assert outcome.status == expected
    assert con.execute(
        "SELECT snapshot_date::varchar FROM raw.opportunity_snapshots ORDER BY 1"
    ).fetchall() == [("2025-06-01",), ("2025-06-02",)]


def test_inspect_shows_format_mapping_preview_and_problems_without_loading(tmp_path, capsys):
    path = write_csv(
        tmp_path / "商机_20250601.csv",
        ["商机编号", "商机名称", "预计成交金额", "创建时间"],
        [["S1", "华信ERP", "12.5万", "2025年5月1日"], ["S2", "恒达", "很多", "2025/5/2"]],
        encoding="gb18030",
    )
    code = main(["inspect", str(path), "--data-dir", str(tmp_path), "--as-of", "2025-06-30"])
    out = capsys.readouterr().out
    assert code == 0
    assert "cn_crm 商机" in out
    assert "opportunities.amount" in out and "<- 预计成交金额" in out
    assert "amount=125000" in out
    assert "row 3, column '预计成交金额', value '很多'" in out
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_inspect_lists_each_problem_once(tmp_path, capsys):
    """A current-state export (HubSpot deals) is read into the deals and into their dated
    snapshots: a bad cell was listed once per table, twice in all. Each problem once, the
    count too; a cell two fields read (Close Date: the close and the expected close date)
    once per reason."""
    path = write_csv(
        tmp_path / "hubspot-deals.csv",
        ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date"],
        [
            ["1", "a", "Closed Won", "12,5", "2025-03-01", "2025-02-01 10:00"],
            ["2", "b", "Closed Lost", "8000", "2025-13-01", "2025-02-01 10:00"],
            ["3", "c", "Closed Lost", "9000", "2025-03-01", "2025-02-01 10:00"],
        ],
    )
    assert main(["inspect", str(path), "--as-of", "2025-03-15"]) == 0
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("  row ")]
    assert problems == [
        "  row 2, column 'Amount', value '12,5': cannot read value as amount: expected an "
        "amount such as 8000, 8,000.50, ¥8,000, 8000元 or 12.5万",
        "  row 3, column 'Close Date', value '2025-13-01': cannot read value as date: expected "
        "a date such as 2025-03-05, 2025/3/5 or 2025年3月5日",
        "  row 3, column 'Close Date', value '2025-13-01': cannot read value as timestamp: "
        "expected a date and time such as 2025-03-05 14:20, 2025/3/5 14:20, 2025年3月5日 or "
        "2024-01-22T16:14:25.000+0000",
    ]
    assert "1/3 rows would load" in out and "2 rejected" in out


def test_inspect_of_unknown_file_says_what_it_found(tmp_path, capsys):
    path = write_csv(tmp_path / "notes.csv", ["Kunde", "Notiz"], [["A", "B"]])
    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert "set_aside" in out and "Kunde, Notiz" in out


def test_win_probability_in_each_crm_spelling_lands_in_percent(tmp_path):
    write_csv(
        tmp_path / "landing" / "商机.csv",
        ["商机编号", "商机名称", "创建时间", "赢率"],
        [
            ["C1", "甲", "2025-01-01", "60%"],
            ["C2", "乙", "2025-01-01", "35"],
            ["C3", "丙", "2025-01-01", "很高"],
        ],
    )
    write_csv(
        tmp_path / "landing" / "hubspot-deals.csv",
        ["Record ID", "Deal Name", "Create Date", "Deal Stage", "Deal Stage Probability"],
        [["9001", "Acme", "2025-01-01", "qualifiedtobuy", "0.4"]],
    )
    con, outcomes = load(tmp_path)
    got = dict(con.execute("SELECT opportunity_id, probability FROM raw.opportunities").fetchall())
    assert got == {"C1": 60, "C2": 35, "9001": 40}
    # an unreadable probability rejects the row and names the column and what was expected
    [(column, reason)] = con.execute("SELECT column_name, reason FROM raw.rejects").fetchall()
    assert column == "赢率" and "a percentage such as 30 or 30%" in reason
    assert outcomes["商机.csv"].rows_rejected == 1
