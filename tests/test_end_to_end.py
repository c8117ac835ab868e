"""The daily job end to end, its mart figures checked against figures computed here,
independently, from the generated files."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingestion.sample import FILES
from orchestration.cli import main
from tests.conftest import SAMPLE_AS_OF, keyed, marts_fingerprint, query, run_ok

pytestmark = pytest.mark.e2e

STATUS = {"进行中": "open", "赢单": "won", "输单": "lost"}
OPEN_STAGES = {"初步接触": 1, "需求确认": 2, "方案报价": 3, "商务谈判": 4}
AS_OF_END = datetime.combine(SAMPLE_AS_OF + timedelta(days=1), datetime.min.time())
MARTS = (
    "opportunities",
    "opportunity_lifecycle",
    "follow_up_frequency",
    "follow_up_weekly",
    "follow_up_by_outcome",
    "cycle_time",
    "cycle_time_summary",
    "loss_reasons",
    "loss_reason_summary",
    "funnel_conversion",
    "funnel_cohorts",
    "pipeline_weekly",
    "owner_performance",
)
PER_OPPORTUNITY_MARTS = (
    "opportunities",
    "opportunity_lifecycle",
    "follow_up_frequency",
    "cycle_time",
    "loss_reasons",
)


def ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


def live_opportunities(sample_data) -> dict[str, dict]:
    return {o["opportunity_id"]: o for o in sample_data.opportunities if o["is_deleted"] != "true"}


def expected_visits(sample_data) -> dict[str, list[str]]:
    """Stage visits per deal: open-stage history up to the close, consecutive repeats
    collapsed, the closing stage last."""
    history: dict[str, list[tuple[datetime, str]]] = {}
    for row in sample_data.stage_history:
        history.setdefault(row["opportunity_id"], []).append((ts(row["entered_at"]), row["stage"]))
    visits = {}
    for opp_id, opp in live_opportunities(sample_data).items():
        closed = ts(opp["closed_at"]) if opp["closed_at"] else None
        rows = sorted(
            (t, s)
            for t, s in history.get(opp_id, [])
            if s in OPEN_STAGES and (closed is None or t <= closed)
        )
        stages = [s for _, s in rows]
        if closed:
            stages.append(opp["stage"])
        visits[opp_id] = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    return visits


def serving(built_warehouse: Path) -> Path:
    return built_warehouse / "serving.duckdb"


def test_opportunity_counts_and_amounts(built_warehouse, sample_data):
    live = live_opportunities(sample_data)
    expected = Counter(STATUS[o["status"]] for o in live.values())
    got = dict(
        query(
            serving(built_warehouse), "SELECT status, count(*) FROM marts.opportunities GROUP BY 1"
        )
    )
    assert got == dict(expected)
    won_amount = sum(float(o["amount"]) for o in live.values() if o["status"] == "赢单")
    [(amount,)] = query(
        serving(built_warehouse), "SELECT sum(amount) FROM marts.opportunities WHERE status = 'won'"
    )
    assert float(amount) == pytest.approx(won_amount)
    deleted = [o["opportunity_id"] for o in sample_data.opportunities if o["is_deleted"] == "true"]
    for mart in PER_OPPORTUNITY_MARTS:
        [(n,)] = query(
            serving(built_warehouse),
            f"SELECT count(*) FROM marts.{mart} WHERE opportunity_id IN (SELECT unnest(?))",
            [deleted or ["none"]],
        )
        assert n == 0, f"deleted deal in {mart}"


def test_activity_counts_per_opportunity(built_warehouse, sample_data):
    live = live_opportunities(sample_data)
    cutoff = AS_OF_END.strftime("%Y-%m-%d %H:%M:%S")
    expected = Counter(
        a["opportunity_id"]
        for a in sample_data.activities
        if a["opportunity_id"] in live and a["occurred_at"] < cutoff
    )
    got = dict(
        query(
            serving(built_warehouse),
            "SELECT opportunity_id, activity_count FROM marts.follow_up_frequency",
        )
    )
    assert set(got) == set(live), "every opportunity, touched or not"
    assert {k: v for k, v in got.items() if v} == dict(expected)
    calls = Counter(
        a["opportunity_id"]
        for a in sample_data.activities
        if a["opportunity_id"] in live and a["activity_type"] == "电话"
    )
    got_calls = dict(
        query(
            serving(built_warehouse),
            "SELECT opportunity_id, calls FROM marts.follow_up_frequency WHERE calls > 0",
        )
    )
    assert got_calls == dict(calls)


def test_stale_open_deals(built_warehouse, sample_data):
    live = live_opportunities(sample_data)
    last: dict[str, datetime] = {}
    for a in sample_data.activities:
        if a["opportunity_id"] in live:
            last[a["opportunity_id"]] = max(
                last.get(a["opportunity_id"], datetime.min), ts(a["occurred_at"])
            )
    expected = {
        i
        for i, o in live.items()
        if o["status"] == "进行中" and days(last.get(i, ts(o["created_at"])), AS_OF_END) > 14
    }
    got = {
        r[0]
        for r in query(
            serving(built_warehouse),
            "SELECT opportunity_id FROM marts.follow_up_frequency WHERE is_stale",
        )
    }
    assert got == expected and len(expected) >= 5


def test_stage_visits_regressions_and_days_in_current_stage(built_warehouse, sample_data):
    visits = expected_visits(sample_data)
    got: dict[str, list[str]] = {}
    for opp_id, stage in query(
        serving(built_warehouse),
        "SELECT opportunity_id, stage FROM marts.opportunity_lifecycle "
        "ORDER BY opportunity_id, visit_number",
    ):
        got.setdefault(opp_id, []).append(stage)
    assert got == {k: v for k, v in visits.items() if v}
    regressions = sum(
        1
        for stages in visits.values()
        for a, b in zip(stages, stages[1:], strict=False)
        if a in OPEN_STAGES and b in OPEN_STAGES and OPEN_STAGES[b] < OPEN_STAGES[a]
    )
    [(n,)] = query(
        serving(built_warehouse),
        "SELECT count(*) FROM marts.opportunity_lifecycle WHERE is_regression",
    )
    assert n == regressions and n > 0

    live = live_opportunities(sample_data)
    entered: dict[str, datetime] = {}
    for row in sample_data.stage_history:
        opp = live.get(row["opportunity_id"])
        if opp and opp["status"] == "进行中":
            entered[opp["opportunity_id"]] = max(
                entered.get(opp["opportunity_id"], datetime.min), ts(row["entered_at"])
            )
    got_days = dict(
        query(
            serving(built_warehouse),
            "SELECT opportunity_id, days_in_current_stage FROM marts.opportunities "
            "WHERE status = 'open'",
        )
    )
    for opp_id, since in entered.items():
        assert got_days[opp_id] == pytest.approx(days(since, AS_OF_END), abs=0.01)


def test_cycle_time_on_closed_deals_only(built_warehouse, sample_data):
    live = live_opportunities(sample_data)
    expected = {
        i: days(ts(o["created_at"]), ts(o["closed_at"]))
        for i, o in live.items()
        if o["status"] in ("赢单", "输单")
    }
    got = dict(
        query(
            serving(built_warehouse), "SELECT opportunity_id, cycle_time_days FROM marts.cycle_time"
        )
    )
    assert set(got) == set(expected)
    for opp_id, value in expected.items():
        assert float(got[opp_id]) == pytest.approx(value, abs=0.01)


def test_loss_reasons_with_blanks_unspecified(built_warehouse, sample_data):
    lost = [o for o in live_opportunities(sample_data).values() if o["status"] == "输单"]
    got = dict(
        query(
            serving(built_warehouse),
            "SELECT loss_reason_category, count(*) FROM marts.loss_reasons GROUP BY 1",
        )
    )
    assert sum(got.values()) == len(lost)
    assert got["unspecified"] == sum(1 for o in lost if not o["loss_reason"])
    price = sum(1 for o in lost if "价格" in o["loss_reason"] or "Price" in o["loss_reason"])
    assert got.get("price", 0) == price


def test_second_run_skips_every_file_and_leaves_marts_identical(
    built_warehouse, sample_landing, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs"))
    before = marts_fingerprint(serving(data))
    run_ok("--data-dir", str(data), "--landing", str(sample_landing), "--as-of", str(SAMPLE_AS_OF))
    assert marts_fingerprint(serving(data)) == before
    ledger = query(
        data / "warehouse.duckdb",
        "SELECT status, count(*) FROM raw.load_ledger WHERE as_of IS NOT NULL AND load_id > "
        "(SELECT max(load_id) FROM raw.load_ledger WHERE status = 'loaded') GROUP BY 1",
    )
    assert ledger == [("skipped", len(FILES))]  # every file of the sample, targets included


def test_canonical_csvs_from_another_tool_build_the_marts(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    # Written by "some other tool": BOM, CRLF, other column order, Chinese status words,
    # 万 amounts, extra columns, no accounts or owners files.
    (landing / "crm_deals.csv").write_bytes(
        "\ufeffstatus,opportunity_id,created_at,amount,stage,closed_at,loss_reason,owner_id,备注,currency\r\n"
        "赢单,D-1,2025-01-01 09:00,12.5万,赢单,2025-01-31 09:00,,U1,重点,\r\n"
        "输单,D-2,2025-01-05 09:00,3万,输单,2025-02-04 09:00,,U1,,\r\n"
        "输单,D-3,2025-01-06 09:00,8000,输单,2025-01-16 09:00,价格太高,U2,,\r\n"
        "进行中,D-4,2025-03-01 09:00,20000,签约成交,,,U2,,\r\n"
        "进行中,D-5,2025-05-01 09:00,50000,方案报价,,,,,USD\r\n".encode()
    )
    (landing / "crm_stage_changes.csv").write_text(
        "opportunity_id,entered_at,stage\n"
        "D-1,2025-01-01 09:00,初步接触\nD-1,2025-01-10 09:00,需求确认\n"
        "D-1,2025-01-10 09:00,需求确认\nD-1,2025-01-20 09:00,初步接触\n"
        "D-1,2025-01-25 09:00,方案报价\nD-1,2025-01-31 09:00,赢单\n",
        encoding="utf-8",
    )
    (landing / "touches.csv").write_text(
        "activity_id,opportunity_id,activity_type,occurred_at\n"
        "T1,D-5,Call,2025-06-28 10:00\nT2,D-5,微信,2025-06-29 10:00\nT3,,电话,2025-06-29 11:00\n",
        encoding="utf-8",
    )
    assert main(["run", "--data-dir", str(tmp_path), "--as-of", "2025-06-30"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Run succeeded in \d+\.\d s", out), "the run says how long it took"
    # Implausible data is kept and reported as a warning, never a failure.
    # (the stage check knows the stages seed and the source's own stage definitions)
    assert "WARN check failed: stage_is_defined_opportunities_stage" in out
    assert "WARN check failed: not_null_opportunities_owner_id" in out
    db = tmp_path / "serving.duckdb"
    assert dict(query(db, "SELECT status, count(*) FROM marts.opportunities GROUP BY 1")) == {
        "won": 1,
        "lost": 2,
        "open": 2,
    }
    assert (
        query(db, "SELECT amount FROM marts.opportunities WHERE opportunity_id = 'D-1'")[0][0]
        == 125000
    )
    assert query(
        db, "SELECT is_unknown_stage FROM marts.opportunities WHERE opportunity_id = 'D-4'"
    ) == [(True,)]
    assert dict(
        query(db, "SELECT loss_reason_category, count(*) FROM marts.loss_reasons GROUP BY 1")
    ) == {"unspecified": 1, "price": 1}
    visits = query(
        db,
        "SELECT stage, is_regression FROM marts.opportunity_lifecycle "
        "WHERE opportunity_id = 'D-1' ORDER BY visit_number",
    )
    assert visits == [
        ("初步接触", False),
        ("需求确认", False),
        ("初步接触", True),
        ("方案报价", False),
        ("赢单", False),
    ]
    assert query(
        db,
        "SELECT activity_count, calls, messages, is_stale FROM marts.follow_up_frequency "
        "WHERE opportunity_id = 'D-5'",
    ) == [(2, 1, 1, False)]
    assert query(db, "SELECT count(*) FROM marts.cycle_time") == [(3,)]
    # Amounts keep their currency; the reporting amount is converted (USD at 7.2 CNY).
    assert query(
        db,
        "SELECT amount, currency, amount_reporting FROM marts.opportunities "
        "WHERE opportunity_id = 'D-5'",
    ) == [(50000, "USD", 360000.0)]


def test_missing_currency_rate_fails_the_run_instead_of_counting_as_one(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "deals.csv").write_text(
        "opportunity_id,created_at,amount,currency\nX1,2025-01-01,100,XYZ\n", encoding="utf-8"
    )
    assert main(["run", "--data-dir", str(tmp_path), "--as-of", "2025-06-30"]) == 1
    err = capsys.readouterr().err
    assert "warehouse_models" in err and "value_in_seed_opportunities_currency" in err
    assert not (tmp_path / "serving.duckdb").exists(), "nothing published from a failed build"


def test_an_installation_in_a_currency_without_a_rate_keeps_its_own_amounts(tmp_path, capsys):
    """Real Brazilian reals (BRL, not in the rates seed) as the installation's currency: its
    own amounts (given or defaulted, the code in any case) need no rate and count as they
    are. A deal in dollars there cannot be converted without BRL's rate: the run fails
    instead of leaving it out of the totals."""

    def folder(name: str, rows: str) -> Path:
        data = tmp_path / name
        (data / "landing").mkdir(parents=True)
        (data / "oppwh.yml").write_text("timezone: America/Sao_Paulo\ncurrency: BRL\n")
        (data / "landing" / "deals.csv").write_text(
            "opportunity_id,created_at,amount,currency\n" + rows, encoding="utf-8"
        )
        return data

    data = folder("brl", "B1,2025-01-01,1234.56,\nB2,2025-01-02,1000,brl\n")
    run_ok("--data-dir", str(data), "--as-of", "2025-06-30")
    assert query(
        data / "serving.duckdb",
        "SELECT opportunity_id, CAST(amount AS DOUBLE), CAST(amount_reporting AS DOUBLE), "
        "reporting_currency "
        "FROM marts.opportunities ORDER BY 1",
    ) == [("B1", 1234.56, 1234.56, "BRL"), ("B2", 1000, 1000, "BRL")]

    mixed = folder("mixed", "B1,2025-01-01,1234.56,\nU1,2025-01-02,1000,USD\n")
    assert main(["run", "--data-dir", str(mixed), "--as-of", "2025-06-30"]) == 1
    assert "amount_reporting" in capsys.readouterr().err
    assert not (mixed / "serving.duckdb").exists(), "nothing published from a failed build"


def test_failed_run_names_the_step_and_exits_non_zero(tmp_path, capsys):
    (tmp_path / "warehouse.duckdb").mkdir()  # a folder where the database file should be
    (tmp_path / "landing").mkdir()
    assert main(["run", "--data-dir", str(tmp_path), "--as-of", "2025-06-30"]) == 1
    err = capsys.readouterr().err
    assert "raw_tables" in err and "warehouse.duckdb" in err


# --- the mission marts, against figures computed here -----------------------------------


def furthest_open_stage(sample_data) -> dict[str, int]:
    return {
        opp_id: max((OPEN_STAGES[s] for s in stages if s in OPEN_STAGES), default=0)
        for opp_id, stages in expected_visits(sample_data).items()
    }


def test_funnel_conversion(built_warehouse, sample_data):
    """Only what the visits show: a won deal reaches the stages it was seen in (not every
    stage), wins count as going past the last one; closed deals never seen in an open stage
    are path_unknown and in no conversion."""
    live = live_opportunities(sample_data)
    furthest = furthest_open_stage(sample_data)
    got = keyed(
        serving(built_warehouse),
        "SELECT stage, reached, advanced, won, still_open, path_unknown "
        "FROM marts.funnel_conversion ORDER BY stage_order",
    )
    assert list(got) == list(OPEN_STAGES)
    won = {i for i, o in live.items() if o["status"] == "赢单"}
    still_open = {i for i, o in live.items() if o["status"] == "进行中"}
    unknown = {i for i in live if furthest[i] == 0 and i not in still_open}
    for stage, order in OPEN_STAGES.items():
        reached = {i for i in live if furthest[i] >= order}
        advanced = {i for i in reached if furthest[i] > order or i in won}
        expected = (
            len(reached),
            len(advanced),
            len(reached & won),
            len(reached & still_open),
            len(unknown),
        )
        assert got[stage] == expected, stage
    first = next(iter(OPEN_STAGES))
    assert got[first][0] == len(live) - len(unknown), (
        "every deal with a known path reaches the entry stage"
    )
    closed_known = [i for i in live if i not in still_open and i not in unknown]
    win_rate = len([i for i in closed_known if i in won]) / len(closed_known)
    conversion = got[first][2] / (got[first][0] - got[first][3])
    assert conversion == pytest.approx(win_rate), "closed deals' conversion to won = their win rate"


def test_funnel_cohorts_add_up_to_the_funnel(built_warehouse):
    by_cohort = dict(
        query(
            serving(built_warehouse),
            "SELECT stage, sum(reached) FROM marts.funnel_cohorts GROUP BY 1",
        )
    )
    overall = dict(
        query(serving(built_warehouse), "SELECT stage, reached FROM marts.funnel_conversion")
    )
    assert by_cohort == overall
    quarters = query(
        serving(built_warehouse),
        "SELECT DISTINCT cohort_quarter FROM marts.funnel_cohorts ORDER BY 1",
    )
    assert all(q.month in (1, 4, 7, 10) and q.day == 1 for (q,) in quarters) and len(quarters) > 1


def test_owner_performance_win_rates_and_open_deals(built_warehouse, sample_data):
    live = live_opportunities(sample_data).values()
    got = keyed(
        serving(built_warehouse),
        "SELECT owner_id, open_deals, won_deals, lost_deals, win_rate FROM marts.owner_performance",
    )
    for owner in {o["owner_id"] for o in live}:
        mine = [o for o in live if o["owner_id"] == owner]
        won = sum(o["status"] == "赢单" for o in mine)
        lost = sum(o["status"] == "输单" for o in mine)
        open_ = sum(o["status"] == "进行中" for o in mine)
        assert got[owner][:3] == (open_, won, lost)
        assert got[owner][3] == pytest.approx(won / (won + lost), abs=1e-4)
    flagged = query(
        serving(built_warehouse),
        "SELECT owner_id FROM marts.owner_performance WHERE is_overloaded_low_win",
    )
    assert flagged == [("U010",)], "the sample's deal hoarder"


def test_pipeline_weekly_adds_up(built_warehouse, sample_data):
    live = live_opportunities(sample_data).values()
    weeks = query(
        serving(built_warehouse),
        "SELECT week_start, open_at_start, created, won, lost, open_at_end "
        "FROM marts.pipeline_weekly ORDER BY week_start",
    )
    assert weeks[-1][0].isoformat() == "2025-06-30"  # the as-of week, Monday start
    assert weeks[-1][5] == sum(o["status"] == "进行中" for o in live)
    assert sum(w[2] for w in weeks) == len(live)
    assert sum(w[3] for w in weeks) == sum(o["status"] == "赢单" for o in live)
    assert sum(w[4] for w in weeks) == sum(o["status"] == "输单" for o in live)
    for previous, week in zip(weeks, weeks[1:], strict=False):
        assert week[1] == previous[5]  # open at start = open at the end of the week before
        assert week[5] == week[1] + week[2] - week[3] - week[4]


def test_follow_up_weekly_and_by_outcome(built_warehouse, sample_data):
    live = live_opportunities(sample_data)
    cutoff = AS_OF_END.strftime("%Y-%m-%d %H:%M:%S")
    linked = [
        a
        for a in sample_data.activities
        if a["opportunity_id"] in live and a["occurred_at"] < cutoff
    ]
    [(total,)] = query(
        serving(built_warehouse),
        "SELECT sum(touches) FROM marts.follow_up_weekly WHERE activity_type = 'all'",
    )
    assert total == len(linked)
    [(visits,)] = query(
        serving(built_warehouse),
        "SELECT sum(touches) FROM marts.follow_up_weekly WHERE activity_type = 'visit'",
    )
    assert visits == sum(a["activity_type"] == "拜访" for a in linked)
    # Deals touched per owner and week (Monday start), over all types and of visits alone.
    touched: dict[tuple, set] = {}
    for a in linked:
        day = datetime.strptime(a["occurred_at"][:10], "%Y-%m-%d").date()
        owner, week = live[a["opportunity_id"]]["owner_id"], day - timedelta(days=day.weekday())
        for kind in ("all", "visit") if a["activity_type"] == "拜访" else ("all",):
            touched.setdefault((owner, week, kind), set()).add(a["opportunity_id"])
    rows = query(
        serving(built_warehouse),
        "SELECT owner_id, week_start, activity_type, deals_touched FROM marts.follow_up_weekly "
        "WHERE activity_type IN ('all', 'visit') AND touches > 0",
    )
    assert {(o, w, t): n for o, w, t, n in rows} == {k: len(v) for k, v in touched.items()}
    got = keyed(
        serving(built_warehouse),
        "SELECT outcome, closed_deals, avg_touches_before_close FROM marts.follow_up_by_outcome",
    )
    for outcome, word in (("won", "赢单"), ("lost", "输单")):
        deals = {i: o for i, o in live.items() if o["status"] == word}
        before = [
            sum(
                1 for a in linked if a["opportunity_id"] == i and a["occurred_at"] <= o["closed_at"]
            )
            for i, o in deals.items()
        ]
        assert got[outcome] == (len(deals), pytest.approx(sum(before) / len(before), abs=0.01))


def test_cycle_time_summary_and_loss_reason_summary(built_warehouse, sample_data):
    import statistics

    live = live_opportunities(sample_data).values()
    won_days = [
        days(ts(o["created_at"]), ts(o["closed_at"])) for o in live if o["status"] == "赢单"
    ]
    [(n, p50)] = query(
        serving(built_warehouse),
        "SELECT deals, p50_days FROM marts.cycle_time_summary "
        "WHERE segment_type = 'all' AND outcome = 'won'",
    )
    assert n == len(won_days) and p50 == pytest.approx(statistics.median(won_days), abs=0.01)
    lost = [o for o in live if o["status"] == "输单"]
    rows = query(
        serving(built_warehouse),
        "SELECT strftime(lost_month, '%Y-%m'), sum(lost_deals), max(share_unspecified) "
        "FROM marts.loss_reason_summary GROUP BY 1",
    )
    assert sum(r[1] for r in rows) == len(lost)
    for month, n, share in rows:
        in_month = [o for o in lost if o["closed_at"][:7] == month]
        assert n == len(in_month)
        blank = sum(1 for o in in_month if not o["loss_reason"])
        assert share == pytest.approx(blank / len(in_month), abs=1e-4)


def test_a_rerun_for_a_past_day_gives_that_days_answer(built_warehouse, sample_data, tmp_path):
    """The same data, run again as of a month earlier: deals created later are not there,
    deals closed later are open in the stage they were in, activities after it do not count."""
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("*.lock"))
    day = "2025-05-31"
    assert main(["run", "--data-dir", str(data), "--as-of", day]) == 0
    cutoff = "2025-06-01 00:00:00"
    live = {i: o for i, o in live_opportunities(sample_data).items() if o["created_at"] < cutoff}
    closed_by_then = {i for i, o in live.items() if o["closed_at"] and o["closed_at"] < cutoff}
    expected_status = {
        i: STATUS[o["status"]] if i in closed_by_then else "open" for i, o in live.items()
    }
    got = {
        row[0]: row[1:]
        for row in query(
            serving(data),
            "SELECT opportunity_id, status, stage, closed_at IS NULL, activity_count "
            "FROM marts.opportunities",
        )
    }
    assert {i: g[0] for i, g in got.items()} == expected_status
    reopened = [i for i in live if STATUS[live[i]["status"]] != "open" and i not in closed_by_then]
    assert reopened, "the sample has deals closed in June"
    history: dict[str, list[tuple[str, str]]] = {}
    for row in sample_data.stage_history:
        if row["stage"] in OPEN_STAGES and row["entered_at"] < cutoff:
            history.setdefault(row["opportunity_id"], []).append((row["entered_at"], row["stage"]))
    for i in reopened:
        assert got[i][2], f"{i} closed after the day: no close yet"
        if history.get(i):
            assert got[i][1] == max(history[i])[1], i
    touches = Counter(
        a["opportunity_id"]
        for a in sample_data.activities
        if a["opportunity_id"] in live and a["occurred_at"] < cutoff
    )
    assert {i: g[3] for i, g in got.items() if g[3]} == dict(touches)
    [(weeks_after,)] = query(
        serving(data), "SELECT count(*) FROM marts.pipeline_weekly WHERE week_start > ?", [day]
    )
    assert weeks_after == 0
