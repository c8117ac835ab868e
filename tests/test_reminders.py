"""Action items, team-chat reminders and the weekly review, checked as their readers would:
the items against figures worked out by hand on data unlike the sample, each chat's payload
as a real HTTP server on 127.0.0.1 receives it (signatures recomputed here), a webhook that
never answers, and the review in a real browser."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import re
import shutil
import threading
import time
import urllib.parse
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pytest

from orchestration.cli import main
from reminders.items import build_action_items
from tests.conftest import query, run_ok
from tests.test_dashboards import SCREENSHOTS, chromium_or_skip
from warehouse.layout import LOCK_FILE

AS_OF = date(2025, 6, 30)
SECRET = "SEC-test-secret"

# --- the items, on hand-made marts -----------------------------------------------------


class OpenDeal(NamedTuple):
    source: str
    id: str
    name: str
    owner: str | None
    stage: str
    industry: str | None
    amount: float | None
    close: date | None
    days_in_stage: float
    days_untouched: float | None  # None: never touched
    age: float
    grade: str


# Two sources unlike the sample: hubspot (English stages, dollars) with activities, and
# cn_crm, which exports none.
OPEN_DEALS = [
    OpenDeal(
        "hubspot",
        "H1",
        "Widget order",
        "ann",
        "Contract Sent",
        "Software",
        12000,
        None,
        12,
        20,
        40,
        "A",
    ),
    OpenDeal(
        "hubspot",
        "H2",
        "Retail pilot",
        "ann",
        "Contract Sent",
        "Retail",
        9000,
        None,
        15,
        1,
        30,
        "B",
    ),
    OpenDeal("hubspot", "H3", "Old lead", "bob", "Qualified", None, None, None, 3, 40, 90, "C"),
    OpenDeal(
        "hubspot", "H4", "Never called", "bob", "Qualified", None, 500, None, 2, None, 16, "B"
    ),
    OpenDeal(
        "cn_crm",
        "C1",
        "华信ERP",
        "zhang",
        "方案报价",
        "制造业",
        125000,
        date(2025, 6, 20),
        4,
        100,
        100,
        "A",
    ),
    OpenDeal("cn_crm", "C2", "无人认领", None, "初步接触", None, 8000, None, 1, None, 5, "D"),
]
# Finished visits of Contract Sent at hubspot: six Software deals, one Retail deal.
SOFTWARE_VISITS = [2, 4, 6, 8, 10, 30]
RETAIL_VISITS = [100]


def hand_made_marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.opportunities (source_system VARCHAR, opportunity_id VARCHAR, "
        "opportunity_name VARCHAR, owner_id VARCHAR, owner_name VARCHAR, stage VARCHAR, "
        "industry VARCHAR, amount_reporting DECIMAL(18,2), reporting_currency VARCHAR, "
        "expected_close_date DATE, days_in_current_stage DOUBLE, days_since_last_activity DOUBLE, "
        "age_days DOUBLE, status VARCHAR, is_missing_owner BOOLEAN)"
    )
    con.execute(
        "CREATE TABLE marts.opportunity_priority (source_system VARCHAR, opportunity_id VARCHAR, "
        "grade VARCHAR)"
    )
    con.execute(
        "CREATE TABLE marts.follow_up_frequency (source_system VARCHAR, opportunity_id VARCHAR, "
        "activity_count BIGINT)"
    )
    con.execute(
        "CREATE TABLE marts.opportunity_lifecycle (source_system VARCHAR, opportunity_id VARCHAR, "
        "stage VARCHAR, days_in_stage DOUBLE, exited_at TIMESTAMPTZ, is_closing_stage BOOLEAN)"
    )
    for d in OPEN_DEALS:
        owner_name = d.owner and d.owner.title()
        con.execute(
            "INSERT INTO marts.opportunities VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'USD', ?, ?, ?, ?, "
            "'open', ?)",
            [d.source, d.id, d.name, d.owner, owner_name, d.stage, d.industry, d.amount]
            + [d.close, d.days_in_stage, d.days_untouched, d.age, d.owner is None],
        )
        con.execute(
            "INSERT INTO marts.opportunity_priority VALUES (?, ?, ?)", [d.source, d.id, d.grade]
        )
        touches = 0 if d.source == "cn_crm" else 1
        con.execute(
            "INSERT INTO marts.follow_up_frequency VALUES (?, ?, ?)", [d.source, d.id, touches]
        )
        con.execute(
            "INSERT INTO marts.opportunity_lifecycle VALUES (?, ?, ?, ?, NULL, false)",
            [d.source, d.id, d.stage, d.days_in_stage],
        )
    closed = [("Software", d) for d in SOFTWARE_VISITS] + [("Retail", d) for d in RETAIL_VISITS]
    for n, (industry, days) in enumerate(closed):
        oid = f"W{n}"
        con.execute(
            "INSERT INTO marts.opportunities VALUES ('hubspot', ?, 'won deal', 'ann', 'Ann', "
            "'Closed Won', ?, 100, 'USD', NULL, 1, 1, 200, 'won', false)",
            [oid, industry],
        )
        con.execute(
            "INSERT INTO marts.opportunity_lifecycle VALUES ('hubspot', ?, 'Contract Sent', ?, "
            "TIMESTAMPTZ '2025-05-01 00:00:00+00', false), "
            "('hubspot', ?, 'Closed Won', 0, NULL, true)",
            [oid, days, oid],
        )


def test_action_items_say_only_what_the_data_shows(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        hand_made_marts(con)
        assert build_action_items(con, AS_OF, stale_days=14) > 0
        got = {
            (r[0], r[1]): r[2:]
            for r in con.execute(
                "SELECT opportunity_id, reason_code, days, text_en FROM marts.action_items"
            ).fetchall()
        }
        # stored in the order an owner reads them: by owner (none last), grade (none after
        # D), amount (largest first, none last), deal, then the reasons by urgency
        stored = con.execute(
            "SELECT owner_id, grade, amount, opportunity_id, reason_code FROM marts.action_items"
        ).fetchall()
    urgency = ["no_owner", "no_follow_up", "past_close_date", "stuck_in_stage"]
    assert stored == sorted(
        stored,
        key=lambda r: (
            r[0] is None,
            r[0] or "",
            "ABCD".index(r[1]) if r[1] in ("A", "B", "C", "D") else 4,
            r[2] is None,
            -(r[2] or 0),
            r[3],
            urgency.index(r[4]),
        ),
    )
    software_p75 = np.percentile(SOFTWARE_VISITS, 75)  # 9.5: H1's own industry
    stage_p75 = np.percentile(SOFTWARE_VISITS + RETAIL_VISITS, 75)  # 20: Retail has 1 visit
    assert (software_p75, stage_p75) == (9.5, 20.0)
    assert got == {
        # A, untouched 20 days > 14; 12 days in Contract Sent > its industry's 9.5
        ("H1", "no_follow_up"): (20, "grade A deal not followed up for 20 days (over 14)"),
        ("H1", "stuck_in_stage"): (
            12,
            "12 days in Contract Sent; 75% of similar deals moved on within 10 days",
        ),
        # H2: 15 days < the stage's 20 (too few Retail visits for a norm of their own)
        # H3: grade C, so no follow-up reminder however long untouched
        # H4: B, never touched, created 16 days ago
        ("H4", "no_follow_up"): (16, "grade B deal not followed up for 16 days (over 14)"),
        # C1: cn_crm exports no activities, so untouched means nothing; its close date passed
        ("C1", "past_close_date"): (
            10,
            "expected close date 2025-06-20 passed 10 days ago, still open",
        ),
        ("C2", "no_owner"): (None, "no owner: assign one"),
    }


# --- a real webhook on 127.0.0.1 -------------------------------------------------------

CHAT_ANSWERS = {
    "wecom": b'{"errcode":0,"errmsg":"ok"}',
    "dingtalk": b'{"errcode":0,"errmsg":"ok"}',
    "feishu": b'{"code":0,"msg":"success"}',
    "slack": b"ok",
}


class ChatHandler(BaseHTTPRequestHandler):
    """Records every POST (path, query, JSON body) and answers as the chat named by the
    path's first part would; `/silent/...` never answers."""

    received: list[dict] = []
    stop = threading.Event()
    # The data folder whose writer lock a silent chat looks at, and what it saw.
    data_dir: Path | None = None
    lock_was_free: list[bool] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        parts = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        chat = parts.path.strip("/").split("/")[0]
        if chat == "silent":
            if self.data_dir is not None:
                type(self).lock_was_free.append(writer_lock_is_free(self.data_dir))
            self.stop.wait(30)
            return
        type(self).received.append(
            {"chat": chat, "query": urllib.parse.parse_qs(parts.query), "body": json.loads(body)}
        )
        answer = CHAT_ANSWERS[chat]
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def writer_lock_is_free(data_dir: Path) -> bool:
    with (data_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@pytest.fixture
def chat_server():
    ChatHandler.received, ChatHandler.data_dir, ChatHandler.lock_was_free = [], None, []
    ChatHandler.stop = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    ChatHandler.stop.set()
    server.shutdown()


def published_folder(built_warehouse: Path, root: Path, settings: str) -> Path:
    """A data folder holding the sample's serving copy and an oppwh.yml."""
    root.mkdir(parents=True)
    shutil.copy(built_warehouse / "serving.duckdb", root / "serving.duckdb")
    (root / "oppwh.yml").write_text(settings, encoding="utf-8")
    return root


def reminder_settings(url: str, fmt: str, **more) -> str:
    lines = [f"  webhook: {url}", f"  format: {fmt}", *(f"  {k}: {v}" for k, v in more.items())]
    return "reminders:\n" + "\n".join(lines) + "\n"


def b64_hmac(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def message_text(chat: str, body: dict) -> str:
    """The text a reader of the chat sees, and a check of the payload's own shape and limit."""
    if chat == "wecom":
        assert body["msgtype"] == "markdown"
        text = body["markdown"]["content"]
        assert len(text.encode()) <= 4096
    elif chat == "dingtalk":
        assert body["msgtype"] == "markdown" and body["markdown"]["title"]
        text = body["markdown"]["text"]
        assert len(text.encode()) <= 20000
    elif chat == "feishu":
        assert body["msg_type"] == "post"
        [(locale, post)] = body["content"]["post"].items()
        assert locale == "zh_cn" and post["title"]
        assert all(part["tag"] == "text" for line in post["content"] for part in line)
        text = post["title"] + "\n" + "\n".join(p["text"] for line in post["content"] for p in line)
        assert len(json.dumps(body, ensure_ascii=False).encode()) <= 20 * 1024
    else:
        header, section = body["blocks"]
        assert header["type"] == "header" and len(header["text"]["text"]) <= 150
        assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
        text = header["text"]["text"] + "\n" + section["text"]["text"]
        assert len(section["text"]["text"]) <= 3000 and body["text"]
    return text


@pytest.mark.parametrize("chat", ["wecom", "dingtalk", "feishu", "slack"])
def test_each_owner_gets_one_message_in_the_chats_own_payload(
    chat, chat_server, built_warehouse, tmp_path
):
    max_deals = 40 if chat == "wecom" else 10  # WeCom's 4 KB must then cut the list itself
    secret = {"secret": SECRET} if chat in ("dingtalk", "feishu") else {}
    settings = reminder_settings(
        f"{chat_server}/{chat}/send?key=abc", chat, max_deals=max_deals, **secret
    )
    data = published_folder(built_warehouse, tmp_path / "data", settings)
    started = time.time()
    assert main(["remind", "--data-dir", str(data)]) == 0
    # What each owner should receive, from the mart itself: deals by grade, then amount.
    items = query(
        data / "serving.duckdb",
        "SELECT source_system, owner_id, any_value(owner_name), opportunity_id, "
        "any_value(opportunity_name), any_value(grade), any_value(amount) "
        "FROM marts.action_items GROUP BY 1, 2, 4",
    )
    owners: dict[tuple, list] = {}
    for source, owner, name, oid, deal, grade, amount in items:
        owners.setdefault((source, owner), []).append(
            (grade or "E", -(amount or 0), oid, deal, name)
        )
    received = ChatHandler.received
    assert len(received) == len(owners), "one message per owner with items"
    texts = [message_text(chat, r["body"]) for r in received]
    for (_, owner), deals in owners.items():
        deals.sort()
        name = deals[0][4] or owner
        [text] = [t for t in texts if f"{name}（{len(deals)}个商机）" in t]
        shown = re.findall(r"（([A-Z]+-\d+)）", text)
        assert shown and shown == [d[2] for d in deals[: len(shown)]], "most important first"
        assert deals[0][3] in text, "the deal is named"
        if len(shown) < len(deals):
            assert f"另有{len(deals) - len(shown)}个商机" in text
    if chat == "wecom":
        assert any("另有" in t and len(re.findall(r"（[A-Z]+-\d+）", t)) < 40 for t in texts)
    for r in received:
        if chat == "dingtalk":
            ts = r["query"]["timestamp"][0]
            assert abs(int(ts) / 1000 - started) < 60
            assert r["query"]["sign"][0] == b64_hmac(SECRET.encode(), f"{ts}\n{SECRET}".encode())
        if chat == "feishu":
            ts = r["body"]["timestamp"]
            assert r["body"]["sign"] == b64_hmac(f"{ts}\n{SECRET}".encode(), b"")


def test_dry_run_prints_the_messages_and_sends_nothing(
    chat_server, built_warehouse, tmp_path, capsys
):
    settings = reminder_settings(f"{chat_server}/slack/hook", "slack", language="en")
    data = published_folder(built_warehouse, tmp_path / "data", settings)
    assert main(["remind", "--data-dir", str(data), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "not sent" in out and '"blocks"' in out and "Deals to act on 2025-06-30" in out
    assert ChatHandler.received == []


def test_a_webhook_that_never_answers_holds_the_run_no_longer_than_the_deadline(
    chat_server, built_warehouse, tmp_path, capsys
):
    """The same day run again with nothing new (the build is reused), first without reminders,
    then with a chat that never answers: the second is longer by at most the deadline."""
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs"))
    args = ("--data-dir", str(data), "--as-of", AS_OF.isoformat())
    started = time.monotonic()
    run_ok(*args)
    plain = time.monotonic() - started
    settings = reminder_settings(f"{chat_server}/silent/send", "wecom", deadline_seconds=2)
    (data / "oppwh.yml").write_text(settings, encoding="utf-8")
    ChatHandler.data_dir = data
    capsys.readouterr()
    started = time.monotonic()
    run_ok(*args)
    with_silent_chat = time.monotonic() - started
    out = capsys.readouterr().out
    assert "Run succeeded" in out and "reminders / 提醒: 0 of" in out
    assert "did not answer within" in out or "batch deadline passed" in out
    assert with_silent_chat < plain + 2 + 4, (plain, with_silent_chat)
    assert ChatHandler.lock_was_free == [True], "sent after the writer lock was released"
    log = (data / "logs" / "last_run.log").read_text(encoding="utf-8")
    assert "reminders / 提醒: 0 of" in log, "the run's log says so too"


# --- the weekly review -----------------------------------------------------------------


def test_weekly_review_is_one_printable_file_with_charts_in_a_real_browser(
    built_warehouse, tmp_path, chat_server
):
    from playwright.sync_api import sync_playwright

    chromium = chromium_or_skip()
    data = published_folder(
        built_warehouse, tmp_path / "data", reminder_settings(f"{chat_server}/feishu/x", "feishu")
    )
    out = tmp_path / "weekly.html"
    week = "2025-W26"
    assert (
        main(
            [
                "report",
                "weekly",
                "--data-dir",
                str(data),
                "--week",
                week,
                "--out",
                str(out),
                "--send",
            ]
        )
        == 0
    )
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "nothing external"
    assert "@page { size: A4" in html and "<script" not in html
    # The week's new deals, counted here from the deals themselves (local days, Shanghai).
    monday = datetime(2025, 6, 23, tzinfo=ZoneInfo("Asia/Shanghai"))
    [(created,)] = query(
        data / "serving.duckdb",
        "SELECT count(*) FROM marts.opportunities WHERE created_at >= ? AND created_at < ?",
        [monday, monday + timedelta(days=7)],
    )
    # the headline went to the chat, with the same figure
    [headline] = ChatHandler.received
    lines = [
        p["text"] for line in headline["body"]["content"]["post"]["zh_cn"]["content"] for p in line
    ]
    assert lines[0].startswith(f"新建 {created} ")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 900, "height": 1200})
        page.goto(out.as_uri())
        page.wait_for_selector("svg.chart rect", timeout=30_000)
        assert page.locator("svg.chart").count() >= 4  # trend, follow-up, grades, losses
        assert page.locator("svg.chart rect").count() >= 20
        tiles = page.locator("#movement .tile .v").all_inner_texts()
        assert tiles[0] == str(created)
        assert "需要关注的商机" in page.locator("h2").all_inner_texts()[2]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "weekly_review.png"
        page.screenshot(path=str(shot), full_page=True)
        pdf = tmp_path / "weekly.pdf"
        page.pdf(path=str(pdf), format="A4")
        browser.close()
    assert shot.stat().st_size > 50_000 and pdf.stat().st_size > 10_000


def test_weekly_review_in_english_defaults_to_the_as_of_week_and_refuses_a_bad_week(
    built_warehouse, tmp_path, capsys
):
    data = published_folder(built_warehouse, tmp_path / "data", "")
    assert main(["report", "weekly", "--data-dir", str(data), "--lang", "en"]) == 0
    written = data / "reports" / "weekly-2025-W27.html"  # 2025-06-30 is a Monday
    html = written.read_text(encoding="utf-8")
    assert "Weekly pipeline review 2025-W27" in html and "销售周报" not in html
    assert main(["report", "weekly", "--data-dir", str(data), "--week", "2025-27"]) == 2
    assert "expected an ISO week such as 2025-W27" in capsys.readouterr().err
