"""Dashboards and the serving copy: every page renders (AppTest and a real browser), filters
are parameters, and a reader holding the serving copy open never blocks a run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dashboards.labels import PAGES, label
from dashboards.queries import Filters, query
from orchestration.cli.admin import dashboard_command
from tests.conftest import SAMPLE_AS_OF, run_ok
from tests.conftest import query as sql

pytestmark = pytest.mark.e2e
APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
SCREENSHOTS = Path(__file__).resolve().parent / "artifacts" / "screenshots"


@pytest.fixture
def app(built_warehouse, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("OPPWH_DATA_DIR", str(built_warehouse))
    return AppTest.from_file(str(APP), default_timeout=60)


def test_every_page_renders_with_charts_and_numbers(app, built_warehouse):
    at = app.run()
    assert not at.exception
    open_deals = sql(
        built_warehouse / "serving.duckdb",
        "SELECT count(*) FROM marts.opportunities WHERE status = 'open'",
    )[0][0]
    assert at.metric[0].label == "进行中商机" and at.metric[0].value == str(open_deals)
    for page in PAGES:
        at.sidebar.radio[1].set_value(page).run()
        assert not at.exception, page
        charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
        assert charts or at.metric or at.dataframe, page
        assert at.dataframe or at.metric or charts


@pytest.mark.parametrize("language", ["中文", "English"])
def test_every_page_says_no_data_when_the_filters_match_nothing(app, language):
    """No deal was created in 2030: every page says so plainly, none shows a traceback."""
    no_data = {"中文": "没有符合筛选条件的数据", "English": "No data for these filters"}[language]
    at = app.run()
    at.sidebar.radio[0].set_value(language).run()
    at.sidebar.date_input[0].set_value((date(2030, 1, 1), date(2030, 1, 2))).run()
    assert not at.exception
    assert [m.value for m in at.metric][0] == "0"
    for page in PAGES:
        at.sidebar.radio[1].set_value(page).run()
        assert not at.exception, (language, page, at.exception)
        notes = [i.value for i in at.info] + [c.value for c in at.caption]
        if page in ("cycle_time", "calibration", "forecast", "quality"):  # not per deal: says so
            assert any("筛选" in n or "filters" in n for n in notes), (language, page, notes)
        else:
            assert no_data in notes, (language, page, notes)


def test_language_switch_changes_every_label(app):
    at = app.run()
    at.sidebar.radio[0].set_value("English").run()
    assert at.title[0].value == "Opportunity warehouse · Overview"
    assert [m.label for m in at.metric][:2] == ["Open deals", "Open pipeline"]
    at.sidebar.radio[1].set_value("priority").run()
    assert at.title[0].value.endswith("Priority")
    assert at.get("download_button")


def test_filters_are_bound_parameters(built_warehouse):
    serving = built_warehouse / "serving.duckdb"
    owners = query(serving, "filter_options")
    owner = owners.loc[owners["kind"] == "owner", "value"].iloc[0]
    mine = query(serving, "priority", Filters(owners=(owner,)))
    assert len(mine) > 0 and set(mine["owner_name"]) == {owner}
    # a hostile "owner" is just a value that matches nobody
    hostile = query(serving, "priority", Filters(owners=("x' OR '1'='1",)))
    assert hostile.empty
    everyone = query(serving, "priority", Filters())
    assert len(everyone) > len(mine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
        pytest.skip("chromium is not installed here")
    return path


def test_browser_shows_every_page_with_charts_and_saves_screenshots(built_warehouse, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = chromium_or_skip()
    port = free_port()
    command, env = dashboard_command(built_warehouse, port)
    log = tmp_path / "streamlit.log"
    server = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,  # not the test process's own (pytest-xdist talks over it)
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # Generous waits: on two busy cores (the other tests, a Spark build) Streamlit can
            # take a minute to start and draw its first page.
            for _ in range(120):
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    time.sleep(1)
            try:
                page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
            except Exception:
                raise AssertionError(
                    "no metric on the first page: "
                    + page.locator("body").inner_text()[:2000]
                    + "\n--- streamlit ---\n"
                    + log.read_text()[-3000:]
                ) from None
            for lang, switch in (("zh", None), ("en", "English")):
                if switch:
                    page.locator('[data-testid="stSidebar"] label').filter(
                        has_text=switch
                    ).first.click()
                    page.wait_for_function(
                        "() => document.body.innerText.includes('Opportunity warehouse')",
                        timeout=PAGE_WAIT_MS,
                    )
                for key in PAGES:
                    show_page(page, key, label(key, lang))
                    assert page.locator('[data-testid="stException"]').count() == 0, (lang, key)
                    text = page.locator('[data-testid="stMain"]').inner_text()
                    assert any(ch.isdigit() for ch in text), (lang, key)
                    if lang == "en":
                        assert "亿" not in text and "万" not in text, (lang, key)
                    page.screenshot(path=str(SCREENSHOTS / f"{key}_{lang}.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert all(
        (SCREENSHOTS / f"{key}_{lang}.png").exists() for key in PAGES for lang in ("zh", "en")
    )


# How long a page may take to draw after a click: seconds alone, but over 90 s once when the
# other test process ran the crash chain and the Spark build ran beside it (two cores).
PAGE_WAIT_MS = 240_000


def show_page(page, key: str, title: str) -> None:
    """Open one page from the sidebar and wait until its charts are drawn."""
    page.locator('[data-testid="stSidebar"] label').filter(has_text=title).first.click()
    page.wait_for_function(
        "title => document.querySelector('h1') && document.querySelector('h1').innerText.includes(title)",
        arg=title,
        timeout=PAGE_WAIT_MS,
    )
    page.wait_for_selector(
        '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg',
        timeout=PAGE_WAIT_MS,
    )
    page.wait_for_timeout(800)  # let the charts finish drawing
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1, key


def test_reader_holding_the_serving_copy_never_blocks_a_run(
    built_warehouse, tmp_path, sample_landing
):
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs", "exports"))
    serving = data / "serving.duckdb"
    reader = duckdb.connect(str(serving), read_only=True)
    before = reader.execute("SELECT published_at FROM main.publication").fetchone()[0]
    old_count = reader.execute("SELECT count(*) FROM marts.opportunities").fetchone()[0]
    # a run for a later day, with the reader still holding the old copy open
    run_ok(
        "--data-dir",
        str(data),
        "--landing",
        str(sample_landing),
        "--as-of",
        "2025-07-15",
        "--parquet",
    )
    assert reader.execute("SELECT count(*) FROM marts.opportunities").fetchone()[0] == old_count
    reader.close()
    with duckdb.connect(str(serving), read_only=True) as fresh:
        after, as_of = fresh.execute("SELECT published_at, as_of FROM main.publication").fetchone()
    assert after > before and str(as_of) == "2025-07-15"
    assert (data / "parquet" / "opportunities.parquet").exists()
    assert SAMPLE_AS_OF.isoformat() == "2025-06-30"


def test_the_dashboard_command_starts_the_app_on_localhost(tmp_path):
    command, env = dashboard_command(tmp_path, 8501)
    assert Path(command[2]).is_file(), command  # `streamlit run <the app>`
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert env["OPPWH_DATA_DIR"] == str(tmp_path.resolve())


def test_numbers_are_shown_as_people_read_them():
    from dashboards.formats import column_kind

    kinds = {
        c: column_kind(c)
        for c in (
            "open_amount",
            "weighted_pipeline",
            "win_rate",
            "share_unspecified",
            "conversion",
            "median_days",
            "stage",
            "deals",
        )
    }
    assert kinds == {
        "open_amount": "amount",
        "weighted_pipeline": "amount",
        "win_rate": "rate",
        "share_unspecified": "rate",
        "conversion": "rate",
        "median_days": "days",
        "stage": None,
        "deals": None,
    }


def test_reasons_are_shown_in_the_chosen_language():
    from dashboards.formats import reasons_in

    text = "▲ 今天有跟进 / followed up today; ▼ 已到后期阶段（商务谈判）/ late stage (商务谈判)"
    assert reasons_in(text, "zh") == "▲ 今天有跟进；▼ 已到后期阶段（商务谈判）"
    assert reasons_in(text, "en") == "▲ followed up today; ▼ late stage (商务谈判)"
    assert reasons_in(None, "en") is None
