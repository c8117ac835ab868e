"""Hostile input and hostile queries: nothing a query or a file says reaches outside the data
folder, no row is lost, and nothing slow or odd holds the warehouse (issue: security)."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import threading
import time
import uuid
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
import yaml
from openpyxl import Workbook

from ingestion.archive import archive_files
from ingestion.config import load_settings
from ingestion.files import settle
from ingestion.formats.mapping_file import MappingFileError, load_mappings
from ingestion.load import LoadSettings, files_loaded, load_landing
from orchestration.assets.ingestion import outcome_lines
from orchestration.cli import main
from quality.notify import WebhookError, post_webhook
from tests.conftest import query
from tests.exports import write_csv
from warehouse.folders import prune_old_folders
from warehouse.lock import LOCK_NAME
from warehouse.safe_names import folder_name
from warehouse.spreadsheet_safe import safe_csv_bytes
from warehouse.user_yaml import UserYamlError, load_yaml_text

HEADER = "opportunity_id,opportunity_name,amount,created_at,stage,status,loss_reason\n"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_state(root: Path) -> dict[str, str]:
    """Every regular file under root with its hash (what 'nothing changed' means)."""
    return {
        str(p.relative_to(root)): sha(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.suffix != ".lock" and p.name != LOCK_NAME
    }


@pytest.fixture(scope="module")
def copy_of_sample(built_warehouse, tmp_path_factory) -> Path:
    """A data folder with the sample's warehouse and serving copy (its own copy)."""
    data = tmp_path_factory.mktemp("attacked") / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs", "dbt"))
    return data


# --- 1. oppwh sql is read-only, one statement, on the serving copy only ---------------------

ATTACKS = [
    ("COPY (SELECT 1) TO '{data}/warehouse.duckdb'", "not COPY"),
    ("ATTACH '{data}/warehouse.duckdb' AS w (READ_ONLY false)", "not ATTACH"),
    ("DROP TABLE marts.opportunities", "not DROP"),
    ("EXPORT DATABASE '{data}/dump'", "not EXPORT"),
    ("SET enable_external_access = true", "not SET"),
    ("INSTALL httpfs", "not LOAD"),
    ("LOAD httpfs", "not LOAD"),
    ("SELECT 1; DROP TABLE marts.opportunities", "exactly one statement"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled by configuration"),
    ("SELECT * FROM glob('/etc/*')", "disabled by configuration"),
    ("SELECT * FROM read_parquet('{data}/../*.parquet')", "disabled by configuration"),
    ("CREATE TABLE x AS SELECT 1", "not CREATE"),
    ("PRAGMA enable_profiling", "not PRAGMA"),
]


@pytest.mark.parametrize(("sql", "said"), ATTACKS, ids=[a[0][:30] for a in ATTACKS])
def test_oppwh_sql_refuses_what_is_not_a_query(copy_of_sample, capsys, sql, said):
    data = copy_of_sample
    before = tree_state(data)
    code = main(["sql", sql.format(data=data), "--data-dir", str(data)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert said in err
    assert len(err.strip().splitlines()) == 1, "one line, no traceback"
    assert tree_state(data) == before, "both DuckDB files and every other file unchanged"
    assert not (data / "dump").exists()


def test_oppwh_sql_answers_queries_in_table_csv_and_json(copy_of_sample, capsys, tmp_path):
    data = copy_of_sample
    expected = query(
        data / "serving.duckdb",
        "SELECT status, count(*) FROM marts.opportunities GROUP BY 1 ORDER BY 1",
    )
    sql = "SELECT status, count(*) AS n FROM marts.opportunities GROUP BY 1 ORDER BY 1"
    assert main(["sql", sql, "--data-dir", str(data), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["status", "n"] and [(s, int(n)) for s, n in rows[1:]] == expected
    script = tmp_path / "q.sql"
    script.write_text("-- from a file\n" + sql + ";\n", encoding="utf-8")
    assert main(["sql", "-f", str(script), "--data-dir", str(data), "--format", "json"]) == 0
    assert [(r["status"], r["n"]) for r in json.loads(capsys.readouterr().out)] == expected
    for allowed in (
        "DESCRIBE marts.opportunities",
        "SHOW TABLES",
        "SUMMARIZE marts.owner_performance",
        "EXPLAIN SELECT 1",
        "PIVOT marts.opportunities ON status USING count(*)",
    ):
        assert main(["sql", allowed, "--data-dir", str(data)]) == 0, allowed
    table = capsys.readouterr().out
    assert "opportunity_id" in table and "VARCHAR" in table
    assert main(["sql", "SELECT * FROM marts.no_such_mart", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "no_such_mart" in err and len(err.strip().splitlines()) == 1


def test_oppwh_sql_never_touches_the_warehouse(copy_of_sample, capsys):
    """A query reads the serving copy: a writer holding the warehouse is not in its way, and
    the query cannot hold the warehouse against a run."""
    data = copy_of_sample
    with duckdb.connect(str(data / "warehouse.duckdb")) as writer:  # a run, writing
        writer.execute("CREATE OR REPLACE TABLE main.busy AS SELECT 1")
        assert (
            main(["sql", "SELECT count(*) FROM marts.opportunities", "--data-dir", str(data)]) == 0
        )
        assert (
            main(["sql", "SELECT * FROM warehouse.raw.opportunities", "--data-dir", str(data)]) == 2
        )
    capsys.readouterr()


# --- 2. a value in a file never becomes a path ----------------------------------------------


def test_source_names_from_files_never_leave_the_data_folder(tmp_path, capsys):
    """One run over odd source names (a data column and a mapping's), a 200-row export with
    a bare CR in one deal name, and checks on where dbt and the exports write."""
    escape = f"oppwh-escape-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    names = [f"../../{escape}", f"/tmp/{escape}", "..", "x" * 300, "ok\nname"]
    rows = [
        [f"S-{i}", f"商机{i}", "10000", "2025-05-01 10:00", "方案报价", "进行中", "", name]
        for i, name in enumerate(names)
    ]
    write_csv(
        data / "landing" / "opportunities.csv",
        HEADER.strip().split(",") + ["source_system"],
        rows,
    )
    plain = [
        [f"R-{i}", f"商机{i}", "5000", "2025-05-01 10:00", "初步接触", "进行中", ""]
        for i in range(200)
    ]
    plain[57][1] = "名称\r带回车"  # one CR in one name once lost all 200 rows
    write_csv(data / "landing" / "opportunities_crm.csv", HEADER.strip().split(","), plain)
    mapping = data / "mappings" / "evil.yml"
    mapping.parent.mkdir(parents=True)
    mapping.write_text(
        yaml.safe_dump(
            {
                "name": "evil",
                "source_system": f"../../../{escape}-m",
                "table": "opportunities",
                "match": ["Deal Ref"],
                "columns": {
                    "opportunity_id": "Deal Ref",
                    "opportunity_name": "Title",
                    "created_at": "Created",
                    "stage": "Stage",
                    "status": "Status",
                },
            }
        ),
        encoding="utf-8",
    )
    write_csv(
        data / "landing" / "deals.csv",
        ["Deal Ref", "Title", "Created", "Stage", "Status"],
        [["M-1", "映射商机", "2025-05-02 09:00", "需求确认", "进行中"]],
    )
    outside_before = set(tmp_path.iterdir())
    project_target = Path(__file__).resolve().parents[1] / "dbt_project" / "target"
    project_before = sorted(p.name for p in project_target.iterdir() if p.is_dir())
    assert main(["run", "--data-dir", str(data), "--as-of", "2025-06-30"]) == 0
    capsys.readouterr()
    assert set(tmp_path.iterdir()) == outside_before
    assert not any(Path(p).exists() for p in (f"/tmp/{escape}", f"/{escape}", f"/tmp/{escape}-m"))
    serving = data / "serving.duckdb"
    exports = data / "exports"
    folders = {p.name for p in exports.iterdir()}
    graded = {
        r[0]
        for r in query(serving, "SELECT DISTINCT source_system FROM marts.opportunity_priority")
    }
    assert len(graded) >= 4 and folders == {folder_name(s) for s in graded}
    for folder in exports.iterdir():
        assert folder.resolve().parent == exports.resolve()
        assert len(folder.name) <= 64 and "/" not in folder.name and ".." not in folder.name
    # the source's own name is kept in the marts, only its folder is a slug
    marts = dict(
        query(serving, "SELECT source_system, count(*) FROM marts.opportunities GROUP BY 1")
    )
    assert set(names) <= set(marts)
    assert marts["native"] == 200, "every row of the export with a CR in a name"
    # dbt's per-run output lives under the data folder, never in the project
    assert sorted(p.name for p in project_target.iterdir() if p.is_dir()) == project_before
    [run_folder] = list((data / "dbt").glob("run-*"))
    assert (run_folder / "run_results.json").exists()


def test_an_odd_source_name_never_fails_a_later_write_back(tmp_path):
    import pandas as pd

    from scoring.config import load_config
    from scoring.writeback import write_exports

    names = ["../../x", "/tmp/x", "..", "x" * 300, "ok\nname", "销售易"]
    today = pd.DataFrame(
        {
            "source_system": names,
            "opportunity_id": [f"O-{i}" for i in range(len(names))],
            "grade": "A",
            "score": 90.0,
            "reasons": "▲ reason",
            "previous_grade": None,
        }
    )
    exports = tmp_path / "data" / "exports"
    for day in (date(2025, 6, 30), date(2025, 7, 1)):
        result = write_exports(today, exports, day, load_config(None))
        assert all(exports.resolve() in p.resolve().parents for p in result.files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert len(list(exports.iterdir())) == len(names)
    assert folder_name("销售易") == "销售易" and folder_name("salesforce") == "salesforce"


# --- 3. line breaks inside cells --------------------------------------------------------------

MULTILINE_NAMES = {"ML-1": "第一行\n第二行", "ML-2": "windows\r\nline", "ML-3": "old mac\rline"}


def test_quoted_line_breaks_load_in_csv_and_xlsx(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    body = "".join(
        f'{key},"{name}",1000,2025-05-01 10:00,初步接触,进行中,\n'
        for key, name in MULTILINE_NAMES.items()
    )
    padded = "ML-4,short row\n"  # fewer fields than the header: padded, and rejected for created_at
    (landing / "opportunities.csv").write_bytes((HEADER + body + padded).encode("utf-8"))
    book = Workbook()
    sheet = book.active
    sheet.append(["商机编号", "商机名称", "创建时间", "预计成交金额"])
    for key, name in MULTILINE_NAMES.items():
        sheet.append([key.replace("ML", "XL"), name, "2025/5/1", "3万"])
    book.save(landing / "商机.xlsx")
    with duckdb.connect() as con:
        outcomes = {
            o.file_name: o
            for o in load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
        }
        assert outcomes["opportunities.csv"].status == "loaded"
        assert (
            outcomes["opportunities.csv"].rows_loaded,
            outcomes["opportunities.csv"].rows_rejected,
        ) == (3, 1)
        assert outcomes["商机.xlsx"].status == "loaded" and outcomes["商机.xlsx"].rows_loaded == 3
        names = dict(
            con.execute("SELECT opportunity_id, opportunity_name FROM raw.opportunities").fetchall()
        )
    for key, name in MULTILINE_NAMES.items():
        assert names[key] == name, "byte for byte, line breaks kept"
        assert names[key.replace("ML", "XL")] in (
            name,
            name.replace("\r\n", "\n").replace("\r", "\n"),
        )


def test_an_unreadable_or_overlong_line_is_rejected_not_the_file(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    good = "G-{n},ok,1,2025-05-01 10:00,初步接触,进行中,\n"
    long_line = "L-1," + "长" * (3 << 20) + ",1,2025-05-01 10:00,初步接触,进行中,\n"  # 9 MB
    (landing / "opportunities.csv").write_text(
        HEADER + good.format(n=1) + long_line + good.format(n=2), encoding="utf-8"
    )
    with duckdb.connect() as con:
        [outcome] = load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
        assert (outcome.status, outcome.rows_loaded, outcome.rows_rejected) == ("loaded", 2, 1)
        [(row, reason)] = con.execute("SELECT row_number, reason FROM raw.rejects").fetchall()
        assert row == 3 and "8,388,608 bytes" in reason
        ids = {r[0] for r in con.execute("SELECT opportunity_id FROM raw.opportunities").fetchall()}
        assert ids == {"G-1", "G-2"}


# --- 4. files still being written, files that vanish ----------------------------------------


def test_settle_sets_aside_moving_and_vanished_files(tmp_path):
    still, growing, going = (tmp_path / n for n in ("still.csv", "growing.csv", "going.csv"))
    for path in (still, growing, going):
        path.write_text(HEADER, encoding="utf-8")
    waited = []
    clock = [time.time()]

    def sleep(seconds):  # while the settle check waits: one file grows, one is deleted
        waited.append(seconds)
        clock[0] += seconds
        with growing.open("a", encoding="utf-8") as handle:
            handle.write("more\n")
        going.unlink()

    ready, busy, gone = settle([still, growing, going], 1.0, now=lambda: clock[0], sleep=sleep)
    assert list(ready) == [still] and busy == [growing] and gone == [going]
    assert waited and 0 < waited[0] <= 1.0, "one wait, bounded by the settle interval"
    old = time.time() - 60
    os.utime(still, (old, old))
    calls = []
    ready, busy, gone = settle([still], 1.0, sleep=calls.append)
    assert list(ready) == [still] and calls == [], "a settled file costs no wait"


def test_a_file_still_being_written_stays_for_the_next_run(tmp_path):
    landing, intake = tmp_path / "landing", tmp_path / "intake"
    landing.mkdir()
    target = landing / "opportunities.csv"
    lines = [f"W-{i},写入中{i},1,2025-05-01 10:00,初步接触,进行中,\n" for i in range(80)]
    target.write_text(HEADER + "".join(lines[:23]), encoding="utf-8")
    stop = threading.Event()

    def keep_writing():  # the rest of the rows, then it keeps the file open and touched
        for line in lines[23:]:
            with target.open("a", encoding="utf-8") as handle:
                handle.write(line)
            time.sleep(0.01)
        while not stop.wait(0.1):
            os.utime(target)

    settings = LoadSettings(as_of=date(2025, 6, 30), settle_seconds=0.5, intake_dir=intake)
    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
            [first] = load_landing(con, landing, settings)
    finally:
        stop.set()
        writer.join()
    assert first.status == "deferred" and "next run" in first.message
    assert target.exists() and not list(intake.glob("*")), "left in landing, nothing taken"
    time.sleep(0.6)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        outcomes = load_landing(con, landing, settings)
        assert [o.status for o in outcomes] == ["loaded"]
        assert con.execute("SELECT count(*) FROM raw.opportunities").fetchone() == (80,)
        ledger = con.execute("SELECT status, content_hash FROM raw.load_ledger ORDER BY load_id")
        [(_, none), (_, digest)] = ledger.fetchall()
    day = tmp_path / "archive" / "2025-06-30"
    [archived] = archive_files(files_loaded(outcomes), day, "move")
    assert sha(archived) == digest, "the bytes loaded are the bytes archived"
    assert none is None and not target.exists(), "moved from landing once archived"


def test_a_run_takes_settled_files_through_the_intake(tmp_path, capsys):
    """The daily job's wiring: settle interval from oppwh.yml, the intake emptied, the
    ledger's hash that of the archived file, the landing folder emptied."""
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    (data / "oppwh.yml").write_text("landing:\n  settle_seconds: 0.2\n", encoding="utf-8")
    write_csv(
        data / "landing" / "opportunities.csv",
        HEADER.strip().split(","),
        [["T-1", "名称", "100", "2025-05-01 10:00", "初步接触", "进行中", ""]],
    )
    import dagster as dg

    from orchestration.assets.ingestion import raw_tables
    from orchestration.resources import WarehouseSettings

    result = dg.materialize(
        [raw_tables],
        resources={"warehouse": WarehouseSettings(data_dir=str(data), as_of="2025-06-30")},
    )
    assert result.success
    [(digest,)] = query(data / "warehouse.duckdb", "SELECT content_hash FROM raw.load_ledger")
    [archived] = list((data / "archive" / "2025-06-30").iterdir())
    assert sha(archived) == digest
    assert not list((data / "landing").iterdir()) and not (data / "intake").exists()
    capsys.readouterr()


# --- 5. bounded memory: workbooks and YAML ----------------------------------------------------


def test_a_workbook_over_the_size_limit_is_refused_with_the_limit_named(tmp_path):
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    (data / "oppwh.yml").write_text("landing:\n  max_workbook_mb: 1\n", encoding="utf-8")
    book = Workbook(write_only=True)
    sheet = book.create_sheet("商机")
    sheet.append(["商机编号", "商机名称", "创建时间"])
    for i in range(40_000):
        sheet.append([f"B-{i}", "名称" * 10, "2025/5/1"])
    book.save(data / "landing" / "big.xlsx")
    settings = load_settings(data, date(2025, 6, 30), "Asia/Shanghai")
    with duckdb.connect() as con:
        [outcome] = load_landing(con, data / "landing", settings)
    assert outcome.status == "failed"
    assert "over the limit of 1 MB" in outcome.message and "max_workbook_mb" in outcome.message


def test_yaml_aliases_and_oversized_settings_are_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    assert len(bomb.encode()) < 600
    with pytest.raises(UserYamlError, match="aliases"):
        load_yaml_text(bomb, "oppwh.yml")
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "bomb.yml").write_text(bomb, encoding="utf-8")
    with pytest.raises(MappingFileError, match="bomb.yml.*aliases"):
        load_mappings(folder)
    (folder / "bomb.yml").write_text("name: x\n" + "# pad\n" * 300_000, encoding="utf-8")
    with pytest.raises(MappingFileError, match="limit"):
        load_mappings(folder)


# --- 6. every JSON key kept; odd landing entries; odd file names -----------------------------


def test_json_lines_keep_keys_first_seen_late(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    lines = [
        {"activity_id": f"a{i}", "occurred_at": "2025-05-01 10:00", "activity_type": "电话"}
        for i in range(1500)
    ]
    lines[1200]["subject"] = "迟到的主题"
    lines[1300]["wechat_group"] = "客户群"
    (landing / "activities.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8"
    )
    with duckdb.connect() as con:
        [outcome] = load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
        assert outcome.status == "loaded" and outcome.rows_loaded == 1500
        assert con.execute(
            "SELECT subject FROM raw.activities WHERE activity_id = 'a1200'"
        ).fetchone() == ("迟到的主题",)
        [(extra,)] = con.execute(
            "SELECT extra FROM raw.activities WHERE activity_id = 'a1300'"
        ).fetchall()
        assert json.loads(extra)["wechat_group"] == "客户群"


def test_entries_that_are_not_regular_files_get_a_ledger_row(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    os.mkfifo(landing / "pipe.csv")
    (landing / "folder.csv").mkdir()
    weird = "deals\nnewline.csv"
    (landing / weird).write_text(
        HEADER + "N-1,x,1,2025-05-01 10:00,初步接触,进行中,\n", encoding="utf-8"
    )
    with duckdb.connect() as con:
        outcomes = {
            o.file_name: o
            for o in load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
        }
        ledger = dict(con.execute("SELECT file_name, message FROM raw.load_ledger").fetchall())
    assert outcomes["pipe.csv"].status == outcomes["folder.csv"].status == "set_aside"
    assert (
        "not a regular file" in ledger["pipe.csv"] and "not a regular file" in ledger["folder.csv"]
    )
    assert outcomes[weird].status == "loaded"
    lines = outcome_lines(list(outcomes.values()))
    assert len(lines) == 3 and any("deals\\nnewline.csv" in line for line in lines)


# --- 7. webhooks never hold the run; the log of a failed run -------------------------------


class DripHandler(BaseHTTPRequestHandler):
    """Answers one byte every second: a per-read timeout never fires."""

    lock_was_free: list[bool] = []
    data_dir: Path | None = None

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        if DripHandler.data_dir is not None:
            with (DripHandler.data_dir / LOCK_NAME).open("a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    DripHandler.lock_was_free.append(True)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    DripHandler.lock_was_free.append(False)
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def drip_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_a_dripping_webhook_is_cut_off_at_the_deadline(drip_server):
    started = time.monotonic()
    with pytest.raises(WebhookError, match="within 2 s"):
        post_webhook(drip_server, {"text": "hi"}, deadline=2)
    assert time.monotonic() - started < 3.5


def test_failed_run_posts_after_the_lock_is_released_and_logs_why(drip_server, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    (data / "oppwh.yml").write_text(
        f"notify:\n  webhook_url: {drip_server}\n  format: slack\n", encoding="utf-8"
    )
    write_csv(
        data / "landing" / "opportunities.csv",
        HEADER.strip().split(","),
        [
            ["D-1", "a", "1", "2025-05-01 10:00", "初步接触", "进行中", ""],
            ["D-1", "b", "2", "2025-05-01 10:00", "方案报价", "进行中", ""],
        ],
    )
    DripHandler.data_dir, DripHandler.lock_was_free = data, []
    started = time.monotonic()
    try:
        assert main(["run", "--data-dir", str(data), "--as-of", "2025-06-30"]) == 1
    finally:
        DripHandler.data_dir = None
    took = time.monotonic() - started
    assert DripHandler.lock_was_free == [True], "posted after the writer lock was released"
    assert took < 60, "the webhook's pace does not hold the run"
    log = (data / "logs" / "last_run.log").read_text(encoding="utf-8")
    assert "D-1" in log and "raw_tables" in log, "the failed run's log says what failed"
    assert "did not answer within" in log
    capsys.readouterr()


# --- 8. restore trusts only the manifest --------------------------------------------------------


@pytest.fixture(scope="module")
def backup_of_sample(copy_of_sample, tmp_path_factory) -> Path:
    (copy_of_sample / "oppwh.yml").write_text("quality:\n  max_days_without_export: 3\n")
    target = tmp_path_factory.mktemp("backups")
    assert main(["backup", str(target), "--data-dir", str(copy_of_sample)]) == 0
    [folder] = list(target.iterdir())
    return folder


def tampered(backup: Path, tmp_path: Path) -> Path:
    copy = tmp_path / backup.name
    shutil.copytree(backup, copy, symlinks=True)
    return copy


def _restore(backup: Path, data: Path, capsys) -> tuple[int, str, bool]:
    """Exit code, error output, and whether the data folder was left as it was."""
    before = tree_state(data)
    code = main(["restore", str(backup), "--data-dir", str(data)])
    return code, capsys.readouterr().err, tree_state(data) == before


def test_restore_refuses_files_not_in_the_manifest(backup_of_sample, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    bad = tampered(backup_of_sample, tmp_path)
    (bad / "mappings").mkdir(exist_ok=True)
    (bad / "mappings" / "evil.yml").write_text("name: evil\n")
    code, err, unchanged = _restore(bad, data, capsys)
    assert code == 1 and "mappings/evil.yml" in err and "nothing changed" in err and unchanged


def test_restore_refuses_symlinks_and_paths_out_of_the_folder(backup_of_sample, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    linked = tampered(backup_of_sample, tmp_path / "l")
    (linked / "oppwh.yml").unlink()
    (linked / "oppwh.yml").symlink_to("/etc/hostname")
    code, err, unchanged = _restore(linked, data, capsys)
    assert code == 1 and "oppwh.yml" in err and "symbolic link" in err and unchanged
    escaping = tampered(backup_of_sample, tmp_path / "e")
    manifest = json.loads((escaping / "manifest.json").read_text())
    (tmp_path / "e" / "outside.yml").write_text("x: 1\n")
    manifest["files"]["../outside.yml"] = sha(tmp_path / "e" / "outside.yml")
    (escaping / "manifest.json").write_text(json.dumps(manifest))
    code, err, unchanged = _restore(escaping, data, capsys)
    assert code == 1 and "../outside.yml" in err and "'..'" in err and unchanged


def test_a_good_backup_restores_exactly_its_manifest(backup_of_sample, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["restore", str(backup_of_sample), "--data-dir", str(data)]) == 0
    manifest = json.loads((backup_of_sample / "manifest.json").read_text())
    restored = {k: v for k, v in tree_state(data).items()}
    assert restored == manifest["files"]
    capsys.readouterr()


# --- 9. exports: ids byte for byte, free text neutralised ------------------------------------


def test_writeback_keeps_ids_byte_for_byte_and_neutralises_text(tmp_path):
    import pandas as pd

    from scoring.config import load_config
    from scoring.writeback import write_exports

    ids = ["-17", "+86-1", "@acct", "=1+1", "0061x"]
    today = pd.DataFrame(
        {
            "source_system": "salesforce",
            "opportunity_id": ids,
            "grade": ["A", "B", "C", "D", "A"],
            "score": [90.0, 70.0, 50.0, 20.0, 88.0],
            "reasons": ['=HYPERLINK("http://x")', "+1", "\r=1+1", "-2", "plain"],
            "previous_grade": [None] * 5,
        }
    )
    result = write_exports(today, tmp_path, date(2025, 6, 30), load_config(None))
    latest = next(p for p in result.files if p.name == "priority_latest.csv")
    with latest.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert sorted(r[0] for r in rows[1:]) == sorted(ids), "ids round-trip as they are"
    reasons = [r[3] for r in rows[1:]]
    assert all(r.startswith("'") for r in reasons if r != "plain")
    by_id = {r[0]: r[3] for r in rows[1:]}
    assert by_id["=1+1"] == "'-2" and by_id["-17"] == '\'=HYPERLINK("http://x")'


def test_dashboard_download_is_neutralised_and_quotes_bare_carriage_returns():
    import pandas as pd

    frame = pd.DataFrame({"opportunity_id": ["=ID-1"], "opportunity_name": ["\r=1+1"], "n": [3]})
    data = safe_csv_bytes(frame)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[1] == ["=ID-1", "'\r=1+1", "3"]
    assert '"\'\r=1+1"' in data.decode("utf-8-sig"), "a cell with a bare CR is quoted"


# --- 10. the project folder stays clean -------------------------------------------------------


def test_old_dbt_run_folders_are_pruned(tmp_path):
    for n in range(6):
        folder = tmp_path / f"run-{n}"
        folder.mkdir()
        os.utime(folder, (1_000_000 + n, 1_000_000 + n))
    (tmp_path / "other").mkdir()
    removed = prune_old_folders(tmp_path, 2, prefix="run-")
    assert sorted(p.name for p in removed) == ["run-0", "run-1", "run-2", "run-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "run-4", "run-5"]
