"""Data quality: contracts on new exports, blocking vs warning, the report, freshness,
and the webhook that tells someone when an unattended run fails."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import threading
import warnings
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest

from ingestion.config import load_settings
from ingestion.files import landing_files
from ingestion.load import LoadSettings, load_landing, unloaded_files
from orchestration.cli import main
from quality import gx_worker
from quality.gx_worker import PROJECT_ROOT
from quality.notify import build_payload
from quality.report import Freshness
from quality.validate import validate_load
from tests.conftest import SAMPLE_AS_OF, marts_fingerprint, query
from tests.exports import NATIVE_OPPORTUNITY_HEADER, write_cn_crm, write_csv, write_salesforce
from tests.next_day import NEW_EXPORT as NEXT_DAY_EXPORT

pytestmark = pytest.mark.e2e

OPP_HEADER = NATIVE_OPPORTUNITY_HEADER
EXACT_COPY = [
    "Q-8",
    "Exact copy",
    "U1",
    "初步接触",
    "进行中",
    "1000",
    "2025-06-01 10:00",
    "",
    "",
    "A1",
]
CLEAN = [
    [
        "Q-1",
        "Clean won",
        "U1",
        "赢单",
        "赢单",
        "50000",
        "2025-03-01 10:00",
        "2025-04-01 10:00",
        "",
        "A1",
    ],
    ["Q-2", "Clean open", "U2", "方案报价", "进行中", "80000", "2025-05-01 10:00", "", "", "A2"],
]
# Each row breaks one warning-level rule; none of them may stop the run.
WARNINGS = [
    [
        "W-1",
        "Closed before created",
        "U1",
        "赢单",
        "赢单",
        "1000",
        "2025-05-01 10:00",
        "2025-04-01 10:00",
        "",
        "A1",
    ],
    [
        "W-2",
        "From the future",
        "U1",
        "初步接触",
        "进行中",
        "1000",
        "2025-09-01 10:00",
        "",
        "",
        "A1",
    ],
    ["W-3", "Unknown stage", "U2", "签约成交", "进行中", "1000", "2025-05-01 10:00", "", "", "A2"],
    [
        "W-4",
        "Lost, no reason",
        "U2",
        "输单",
        "输单",
        "1000",
        "2025-04-01 10:00",
        "2025-05-01 10:00",
        "",
        "A2",
    ],
    ["W-5", "No owner", "", "初步接触", "进行中", "1000", "2025-05-01 10:00", "", "", "A2"],
    [
        "W-6",
        "Negative amount",
        "U1",
        "初步接触",
        "进行中",
        "-500",
        "2025-05-01 10:00",
        "",
        "",
        "A1",
    ],
]


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"errcode":0}')

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/send"
    server.shutdown()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, webhook):
    data = tmp_path_factory.mktemp("quality")
    (data / "oppwh.yml").write_text(
        f"notify:\n  webhook_url: {webhook}\n  format: wecom\nquality:\n  max_days_without_export: 3\n",
        encoding="utf-8",
    )
    write_csv(data / "landing" / "opportunities_20250630.csv", OPP_HEADER, CLEAN + WARNINGS)
    write_csv(
        data / "landing" / "accounts_20250630.csv",
        ["account_id", "account_name", "industry"],
        [["A1", "华信", "制造业"], ["A2", "恒达", ""]],
    )
    return data


def test_warnings_leave_the_run_green_and_are_reported(data_dir, capsys):
    assert main(["run", "--data-dir", str(data_dir), "--as-of", "2025-06-30"]) == 0
    warehouse = data_dir / "warehouse.duckdb"
    failing = dict(
        query(
            warehouse,
            "SELECT check_name, failing_rows FROM quality.check_results "
            "WHERE layer = 'export' AND NOT passed",
        )
    )
    assert failing == {
        "opportunities_closed_after_created": 1,
        "opportunities_created_at_not_after_as_of": 1,
        "opportunities_stage_known": 1,
        "opportunities_lost_has_reason": 1,
        "opportunities_has_owner": 1,
        "opportunities_amount_not_negative": 1,
        "accounts_has_industry": 1,
    }
    samples = dict(
        query(
            warehouse,
            "SELECT check_name, sample_ids FROM quality.check_results "
            "WHERE NOT passed AND layer = 'export'",
        )
    )
    assert json.loads(samples["opportunities_stage_known"]) == ["W-3"]
    # every row stayed: warnings never drop data
    assert query(warehouse, "SELECT count(*) FROM raw.opportunities") == [(8,)]
    capsys.readouterr()
    assert main(["quality", "--data-dir", str(data_dir)]) == 0
    report = capsys.readouterr().out
    assert "[WARN 警告] 阶段名称未定义" in report
    assert "opportunities_20250630.csv → raw.opportunities" in report
    # the fix: a stage_definitions export, naming the stage to define
    assert "stage_definitions" in report and "W-3" in report
    assert "stage name not defined (e.g. 签约成交): 签约成交" in report
    assert "Data completeness by owner" in report


def test_every_check_of_every_run_has_a_row(data_dir):
    warehouse = data_dir / "warehouse.duckdb"
    runs = query(
        warehouse,
        "SELECT run_id, count(*) FILTER (WHERE layer = 'export'), "
        "count(*) FILTER (WHERE layer = 'history'), "
        "count(*) FILTER (WHERE layer = 'landing') FROM quality.check_results "
        "GROUP BY run_id",
    )
    from quality.contracts import CHECKS

    assert len(runs) >= 1
    for _, export, history, landing in runs:
        # opportunities file: its contracts plus the snapshot-less rest as "no new export"
        assert export >= len(CHECKS) and history > 30 and landing == 1


def test_blocking_problem_fails_the_run_and_leaves_marts_unchanged(data_dir, capsys):
    serving = data_dir / "serving.duckdb"
    before = marts_fingerprint(serving)
    raw_before = query(data_dir / "warehouse.duckdb", "SELECT count(*) FROM raw.opportunities")
    write_csv(
        data_dir / "landing" / "opportunities_20250701.csv",
        OPP_HEADER,
        [
            ["Q-9", "Dup A", "U1", "初步接触", "进行中", "1000", "2025-06-01 10:00", "", "", "A1"],
            ["Q-9", "Dup B", "U2", "方案报价", "进行中", "2000", "2025-06-01 10:00", "", "", "A1"],
            EXACT_COPY,
            EXACT_COPY,  # the same row twice: an exact copy, not a conflict
        ],
    )
    Hook.received.clear()
    capsys.readouterr()
    assert main(["run", "--data-dir", str(data_dir), "--as-of", "2025-07-01"]) == 1
    err = capsys.readouterr().err
    assert "opportunities_20250701.csv" in err and "Q-9" in err
    assert "the same opportunity_id twice in one export with different values" in err
    assert marts_fingerprint(serving) == before, "marts and serving copy keep the last good state"
    warehouse = data_dir / "warehouse.duckdb"
    assert query(warehouse, "SELECT count(*) FROM raw.opportunities") == raw_before
    assert query(
        warehouse,
        "SELECT status FROM raw.load_ledger WHERE file_name = 'opportunities_20250701.csv'",
    ) == [("blocked",)]
    assert query(
        warehouse,
        "SELECT severity, failing_rows, sample_ids FROM quality.check_results "
        "WHERE check_name = 'opportunities_opportunity_id_unique_in_export' "
        "AND NOT passed",
    ) == [("block", 1, '["Q-9"]')]
    # someone is told: a 企业微信 robot message
    assert Hook.received and Hook.received[0]["msgtype"] == "text"
    assert "raw_tables" in Hook.received[0]["text"]["content"]


def test_a_corrected_file_is_all_the_user_has_to_drop(data_dir, capsys):
    write_csv(
        data_dir / "landing" / "opportunities_20250702.csv",
        OPP_HEADER,
        [
            ["Q-9", "Dup A", "U1", "初步接触", "进行中", "1000", "2025-06-01 10:00", "", "", "A1"],
            EXACT_COPY,
        ],
    )
    # the blocked file was moved out of the way, into the archive's not_loaded folder
    assert not (data_dir / "landing" / "opportunities_20250701.csv").exists()
    assert (
        data_dir / "archive" / "2025-07-01" / "not_loaded" / "opportunities_20250701.csv"
    ).exists()
    assert main(["run", "--data-dir", str(data_dir), "--as-of", "2025-07-10"]) == 0
    db = data_dir / "serving.duckdb"
    assert query(
        db, "SELECT count(*) FROM marts.opportunities WHERE opportunity_id IN ('Q-8', 'Q-9')"
    ) == [(2,)]
    # the last new export is dated 7/2; as of 7/10 that is 8 days: the freshness check warns
    warehouse = data_dir / "warehouse.duckdb"
    [(passed, description)] = query(
        warehouse,
        "SELECT passed, description FROM quality.check_results WHERE check_name = "
        "'landing_freshness' ORDER BY checked_at DESC LIMIT 1",
    )
    assert not passed and "8 days" in description


def loaded_with_warnings(tmp_path, rows=CLEAN + WARNINGS):
    """An export of clean rows and rows that break the warning contracts (or `rows`), loaded
    into a warehouse of its own (as load id 1); the connection and the as-of day's end."""
    write_csv(tmp_path / "landing" / "opportunities.csv", OPP_HEADER, rows)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    load_landing(
        con, tmp_path / "landing", load_settings(tmp_path, date(2025, 6, 30), "Asia/Shanghai")
    )
    return con, datetime(2025, 7, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_sql_path_finds_what_great_expectations_finds(tmp_path):
    con, end = loaded_with_warnings(tmp_path)
    with warnings.catch_warnings():
        # what pandas deprecates (a zone-aware column's `.values`) fails here, not in a year
        warnings.simplefilter("error", pd.errors.Pandas4Warning)
        gx = validate_load(con, "opportunities", 1, "opportunities.csv", end)
    sql = validate_load(con, "opportunities", 1, "opportunities.csv", end, gx_max_rows=0)
    assert {r.engine for r in gx} == {"great_expectations"} and {r.engine for r in sql} == {"sql"}
    assert [(r.check.name, r.failing_rows, r.sample_ids) for r in gx] == [
        (r.check.name, r.failing_rows, r.sample_ids) for r in sql
    ]
    assert sum(not r.passed for r in gx) == 6
    closed_early = next(r for r in gx if r.check.name == "opportunities_closed_after_created")
    assert (closed_early.failing_rows, closed_early.sample_ids) == (1, ("W-1",))


def test_sql_path_finds_the_same_repeated_ids_as_great_expectations(tmp_path):
    """A load too big for GX checks its ids in SQL: an id repeated exactly is one deal, an
    id held by two different rows fails, in both paths alike."""
    conflicting = ["Q-5", "Other name", *EXACT_COPY[2:]]
    rows = [*CLEAN, EXACT_COPY, EXACT_COPY, ["Q-5", *EXACT_COPY[1:]], conflicting]
    con, end = loaded_with_warnings(tmp_path, rows)

    def unique_check(**kwargs):
        results = validate_load(con, "opportunities", 1, "opportunities.csv", end, **kwargs)
        [result] = [r for r in results if r.check.kind == "unique_after_exact_duplicates"]
        return result

    gx, sql = unique_check(), unique_check(gx_max_rows=0)
    assert (gx.engine, sql.engine) == ("great_expectations", "sql")
    assert (gx.failing_rows, gx.sample_ids) == (1, ("Q-5",))
    assert (sql.failing_rows, sql.sample_ids) == (1, ("Q-5",))


def test_only_a_closed_deal_s_close_date_is_checked(tmp_path):
    """Salesforce's CloseDate and HubSpot's closedate are an open deal's expected close (in
    the future by design, or even before the deal was created in a migrated CRM): the close
    date's warnings are for closed deals only, told by the status word, else (no status, or
    a word the warehouse does not know) by the stage. In both paths."""

    def deal(deal_id, stage, status, closed_at):
        return [deal_id, "Deal", "U1", stage, status, "1000", "2025-05-01 10:00", closed_at, "x"]

    future, past, before_created = "2025-08-15 00:00", "2025-06-10 00:00", "2025-04-01 00:00"
    rows = [
        deal("F-1", "方案报价", "进行中", future),  # open: an expected close
        deal("F-2", "Qualification", "", future),  # no status, an open stage
        deal("F-3", "Closed Won", "", future),  # no status, a closed stage
        deal("F-4", "赢单", "赢单", future),
        deal("F-5", "Closed Lost", " Closed Lost ", future),
        deal("F-6", "赢单", "赢单", past),
        deal("F-7", "输单", "", past),
        deal("F-8", "输单", "Pending", future),  # a word not known: the stage decides
        deal("F-9", "closedwon", "Open", future),  # the status word decides
        deal("B-1", "Qualification", "", before_created),
        deal("B-2", "方案报价", "进行中", before_created),
        deal("B-3", "closedlost", "", before_created),
        deal("B-4", "赢单", "赢单", before_created),
    ]
    con, end = loaded_with_warnings(tmp_path, [[*r, "A1"] for r in rows])

    def findings(**kwargs):
        results = validate_load(con, "opportunities", 1, "opportunities.csv", end, **kwargs)
        return {
            r.check.name: (r.failing_rows, r.sample_ids)
            for r in results
            if r.check.name
            in ("opportunities_closed_at_not_after_as_of", "opportunities_closed_after_created")
        }

    expected = {
        "opportunities_closed_at_not_after_as_of": (4, ("F-3", "F-4", "F-5", "F-8")),
        "opportunities_closed_after_created": (2, ("B-3", "B-4")),
    }
    assert findings() == expected
    assert findings(gx_max_rows=0) == expected


def test_the_gx_worker_finds_what_great_expectations_finds_here(tmp_path):
    """`oppwh run` validates small exports in a second process (quality.gx_worker): the
    same findings as GX in this process; a worker that dies is replaced by this process."""
    from quality.validate import GxCheckError, evaluate_with_gx

    con, end = loaded_with_warnings(tmp_path)
    here = validate_load(con, "opportunities", 1, "opportunities.csv", end)

    def not_here(*args):
        raise AssertionError("evaluated in the test process, not the worker")

    worker = gx_worker.start_worker()
    try:
        there = validate_load(
            con,
            "opportunities",
            1,
            "opportunities.csv",
            end,
            evaluate=gx_worker.evaluator(not_here),
        )
        assert worker.process.poll() is None, "the worker answered and still runs"
        assert there == here and sum(not r.passed for r in there) == 6
        # A worker killed half-way: the run validates the export itself, with the same findings.
        worker.process.kill()
        worker.process.wait()
        again = validate_load(
            con,
            "opportunities",
            1,
            "opportunities.csv",
            end,
            evaluate=gx_worker.evaluator(evaluate_with_gx),
        )
        assert again == here
        # A worker stopped after its work exits by itself (quit_at_once), not killed.
        worker = gx_worker.start_worker()
        answered = validate_load(
            con,
            "opportunities",
            1,
            "opportunities.csv",
            end,
            evaluate=gx_worker.evaluator(not_here),
        )
        assert answered == here
        gx_worker.stop()
        assert worker.process.returncode == 0
    finally:
        gx_worker.stop()
    # GX's own failure, raised in the worker, reaches the run as the same error.
    error = pickle.loads(pickle.dumps(GxCheckError("c", "f.csv", {"exception_message": "no"})))
    assert isinstance(error, GxCheckError) and str(error).startswith("f.csv:")


def test_the_gx_worker_starts_only_when_a_file_is_new_to_the_warehouse(
    built_warehouse, sample_landing, tmp_path, monkeypatch
):
    """A user's own landing folder keeps its old exports (`--landing` copies them), and a
    run after a crash finds the files it loaded: importing GX in a second process for files
    the run will skip costs ~3 s of a core for nothing. Files are known by their content,
    as the loader knows them: a current-state export loads again on another export date."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse / "warehouse.duckdb", warehouse)
    old = landing_files(sample_landing)
    assert len(old) >= 3
    assert unloaded_files(warehouse, old, SAMPLE_AS_OF) == []
    # The sample's exports are history (activities, stage entries): skipped on any day.
    assert unloaded_files(warehouse, old, SAMPLE_AS_OF + timedelta(days=9)) == []
    # The same content under another name is known; the next day's export is new.
    renamed = tmp_path / "incoming" / f"copy_of_{old[0].name}"
    renamed.parent.mkdir()
    shutil.copy(old[0], renamed)
    new = tmp_path / "incoming" / "opportunities_new.csv"
    write_csv(new, *NEXT_DAY_EXPORT)
    assert unloaded_files(warehouse, [*old, renamed, new], SAMPLE_AS_OF) == [new]
    # Salesforce's Opportunity export is the current state of the day it is loaded (no date
    # in its name): on the next day it loads again; its Task export does not.
    day = date(2025, 6, 30)
    salesforce = tmp_path / "sf"
    write_salesforce(salesforce)
    sf_files = landing_files(salesforce)
    sf_warehouse = loaded_into(tmp_path / "sf.duckdb", salesforce, day)
    assert unloaded_files(sf_warehouse, sf_files, day) == []
    again = unloaded_files(sf_warehouse, sf_files, day + timedelta(days=1))
    assert [f.name for f in again] == ["Opportunity.csv"]
    # A Chinese CRM's 商机 exports carry their day in the name: known on later days too.
    chinese = tmp_path / "cn"
    write_cn_crm(chinese)
    cn_files = landing_files(chinese)
    cn_warehouse = loaded_into(tmp_path / "cn.duckdb", chinese, day)
    assert unloaded_files(cn_warehouse, cn_files, day + timedelta(days=1)) == []
    # A folder of more small files than are worth hashing first starts the worker unasked.
    assert not gx_worker.may_load(old, warehouse, SAMPLE_AS_OF)
    monkeypatch.setattr(gx_worker, "CHECKED_BYTES", sum(f.stat().st_size for f in old) - 1)
    assert gx_worker.may_load(old, warehouse, SAMPLE_AS_OF)
    # No warehouse yet, or one another process is writing: every file counts as new.
    assert unloaded_files(tmp_path / "new" / "warehouse.duckdb", old, SAMPLE_AS_OF) == old
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOR_WRITING, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "holding"
        assert unloaded_files(warehouse, old, SAMPLE_AS_OF) == old
    finally:
        writer.communicate("")
    # In a process that has not imported GX (as `oppwh run` starts): no worker for the old
    # files, one for a new file.
    started = subprocess.run(
        [sys.executable, "-c", START_WORKER, str(warehouse), str(new), *map(str, old)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert started.stdout.split() == ["False", "True"], started.stderr[-2000:]


def loaded_into(path, landing, day: date):
    """A warehouse of its own at `path` holding the exports of `landing`, loaded on `day`."""
    with duckdb.connect(str(path)) as con:
        outcomes = load_landing(con, landing, load_settings(path.parent, day, "Asia/Shanghai"))
    assert {o.status for o in outcomes} <= {"loaded", "set_aside"}, outcomes
    return path


# A second process holding the warehouse for writing until its stdin closes.
HOLD_FOR_WRITING = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""
# gx_worker.start over the old files alone, then with the new one (argv: warehouse, new, old...).
START_WORKER = f"""
import sys
from datetime import date
from pathlib import Path
from quality import gx_worker
warehouse, new, *old = map(Path, sys.argv[1:])
day = date.fromisoformat("{SAMPLE_AS_OF}")
print(gx_worker.start(old, warehouse, day), flush=True)
print(gx_worker.start([*old, new], warehouse, day), flush=True)
gx_worker.stop()
"""


def test_a_check_great_expectations_cannot_evaluate_is_an_error_not_a_pass():
    """A GX result that carries an exception has counted nothing: it is never read as zero
    failing rows."""
    from great_expectations.core import ExpectationValidationResult

    from quality.contracts import check_by_name
    from quality.validate import GxCheckError, gx_check_result

    broken = ExpectationValidationResult(
        success=False,
        exception_info={"raised_exception": True, "exception_message": "TypeError: no"},
    )
    check = check_by_name("opportunities_closed_after_created")
    with pytest.raises(GxCheckError, match="opportunities.csv.*closed_after_created.*TypeError"):
        gx_check_result(check, broken, pd.DataFrame(), "opportunities.csv")


@pytest.mark.parametrize(
    "fmt,key", [("wecom", "msgtype"), ("dingtalk", "msgtype"), ("slack", "text"), ("json", "event")]
)
def test_webhook_payload_formats(fmt, key):
    payload = build_payload(fmt, "标题", "正文 / body", "run-1")
    assert key in payload
    assert "正文" in json.dumps(payload, ensure_ascii=False)


def test_a_blocked_file_left_in_a_users_own_folder_does_not_block_again(tmp_path, capsys):
    landing = tmp_path / "exports"  # the user's own folder: copied to the archive, not emptied
    write_csv(
        landing / "deals.csv",
        OPP_HEADER,
        [
            ["Z-1", "A", "U1", "初步接触", "进行中", "1", "2025-06-01 10:00", "", "", "A1"],
            ["Z-1", "B", "U1", "初步接触", "进行中", "2", "2025-06-01 10:00", "", "", "A1"],
        ],
    )
    args = [
        "run",
        "--data-dir",
        str(tmp_path / "data"),
        "--landing",
        str(landing),
        "--as-of",
        "2025-06-30",
    ]
    assert main(args) == 1
    assert (landing / "deals.csv").exists()
    write_csv(
        landing / "deals_fixed.csv",
        OPP_HEADER,
        [["Z-1", "A", "U1", "初步接触", "进行中", "1", "2025-06-01 10:00", "", "", "A1"]],
    )
    capsys.readouterr()
    assert main(args) == 0
    assert "[skipped] deals.csv blocked earlier" in capsys.readouterr().out


def test_report_lists_the_runs_set_aside_files_rejects_by_reason_and_standing_problems(tmp_path):
    """The report of a run names the files it set aside and why, sums rejects by column
    and reason; a later run with nothing new still shows the standing problems instead of
    'all checks passed'."""
    from dataclasses import replace

    from quality.report import ensure_quality_schema, record_export_checks, render_report

    landing = tmp_path / "landing"
    write_csv(
        landing / "opportunities_20250630.csv",
        OPP_HEADER,
        [
            ["R-1", "ok", "U1", "初步接触", "进行中", "100", "2025-06-01 10:00", "", "", "A1"],
            ["R-2", "bad", "U1", "初步接触", "进行中", "一百", "2025-06-01 10:00", "", "", "A1"],
            ["R-3", "bad", "U1", "初步接触", "进行中", "二百", "2025-06-01 10:00", "", "", "A1"],
            [
                "R-4",
                "lost",
                "U1",
                "输单",
                "输单",
                "5",
                "2025-06-01 10:00",
                "2025-06-02 10:00",
                "",
                "A1",
            ],
        ],
    )
    (landing / "notes.txt").write_text("just some notes\nnothing tabular\n", encoding="utf-8")
    end = datetime(2025, 7, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    settings = replace(
        load_settings(tmp_path, date(2025, 6, 30), "Asia/Shanghai"),
        validator=lambda con, t, load_id, name: validate_load(con, t, load_id, name, end),
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        outcomes = load_landing(con, landing, replace(settings, run_id="run-1"))
        ensure_quality_schema(con)
        record_export_checks(con, "run-1", date(2025, 6, 30), outcomes)
        first = render_report(con)
        outcomes = load_landing(con, tmp_path / "empty", replace(settings, run_id="run-2"))
        record_export_checks(con, "run-2", date(2025, 7, 1), outcomes)
        second = render_report(con)
    assert "Files not loaded this run" in first and "notes.txt" in first
    assert "no known export format" in first
    assert "opportunities_20250630.csv · amount: 2 row(s)" in first and "expected" in first
    assert "输单未填写原因" in first
    assert "All checks passed" not in second
    assert "输单未填写原因" in second and "standing" in second
    assert "notes.txt" not in second, "set-aside files are the run's own"


def test_the_runs_line_names_the_stages_it_does_not_know(tmp_path):
    """A HubSpot deals export from a pipeline of the team's own: the run's line for the file
    names the stage names no one defined (the user's own words, most frequent first, not
    only the label's example), and a name holding a line break stays on that line."""
    from orchestration.assets.ingestion import outcome_lines

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "hubspot-deals.csv").write_text(
        "Record ID,Deal Name,Deal Stage,Create Date\n"
        "1,a,Renewal Negotiation,2025-03-02 10:00\n"
        "2,b,Renewed,2025-01-05 10:00\n"
        "3,c,Renewed,2025-01-06 10:00\n"
        '4,d,"Odd\nStage",2025-01-07 10:00\n'
        "5,e,Closed Won,2025-01-08 10:00\n",
        encoding="utf-8",
    )
    end = datetime(2025, 3, 16, tzinfo=ZoneInfo("America/New_York"))
    settings = LoadSettings(
        as_of=date(2025, 3, 15),
        business_tz="America/New_York",
        validator=lambda con, table, load_id, name: validate_load(con, table, load_id, name, end),
    )
    with duckdb.connect() as con:
        lines = outcome_lines(load_landing(con, landing, settings))
    assert [line for line in lines if "stage name not defined (e.g." in line] == [
        "      ! warn: 阶段名称未定义（如 签约成交）/ stage name not defined (e.g. 签约成交) "
        "(4 rows: Renewed, Odd\\nStage, Renewal Negotiation)"
    ]


def test_freshness_says_no_export_loaded_yet_rather_than_none_days(tmp_path):
    """A first run whose only file was rejected whole: the freshness warning said "no new
    export for None days / None天没有新导出"; it says no export has loaded yet, and the
    days when there is a last export."""
    from quality.report import landing_freshness

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "opportunities.csv").write_text(
        "opportunity_id,opportunity_name,amount,created_at,stage,status\n"
        'E-1,euro,"12,5",2025-05-01 10:00,初步接触,进行中\n',
        encoding="utf-8",
    )
    with duckdb.connect() as con:
        [outcome] = load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
        assert outcome.status == "set_aside"
        never = landing_freshness(con, date(2025, 6, 30), 7)
    assert not never.passed and "None" not in never.finding
    assert never.finding == "尚未导入过任何导出 / no export has been loaded yet"
    assert Freshness(8, 7).finding == (
        "最近一次新导出在8天前（上限7天）/ last new export 8 days ago (limit 7)"
    )
