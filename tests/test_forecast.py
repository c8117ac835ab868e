"""The forecast and the targets, on a HubSpot export in New York time and dollars: expected
amounts are Σ probability x amount by month, intervals hold them, the backtest sees only the
deals open at each month's start, and attainment equals the won amounts counted here."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from forecast.intervals import interval
from forecast.timing import Survival, group_rows, remaining_shares
from tests.conftest import query, run_ok
from tests.exports import HUBSPOT_DEAL_HEADER, row, write_csv

NEW_YORK = ZoneInfo("America/New_York")
AS_OF = date(2025, 6, 30)
HEADER = HUBSPOT_DEAL_HEADER
OWNERS = ("Ann Lee", "Bob Wu")


def test_survival_matches_a_hand_count():
    """Ten deals closing on days 1..10, one more still open at day 4 (censored)."""
    curve = Survival.fit(np.array([*range(1, 11), 4.0]), np.array([True] * 10 + [False]))
    # Kaplan-Meier by hand: at risk 11 at day 1 .. day 4 (the censored deal leaves after 4)
    by_hand = 1.0
    for _day, at_risk in [(1, 11), (2, 10), (3, 9), (4, 8)]:
        by_hand *= 1 - 1 / at_risk
    assert math.isclose(curve.at(np.array([4.0]))[0], by_hand)
    # a deal 5 days old: the 6 past deals that lasted longer close on days 6..10, one a day
    shares, enough = remaining_shares(np.array([5.0]), curve, [(0, 2), (2, 100)])
    assert enough[0] and math.isclose(shares[0, 0], 2 / 5) and math.isclose(shares[0, 1], 3 / 5)
    # older than every past deal: no timing to go on
    assert not remaining_shares(np.array([10.0]), curve, [(0, 30)])[1][0]


def test_rows_are_grouped_by_their_keys_values_with_missing_keys_left_out():
    """The deals still to time and the past rows their curves are fitted on are found by
    the values of their keys (source, type, stage), text or categories alike."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "source": ["crm", "hub", "crm", None, "crm", "hub"],
            "stage": pd.Categorical(["s1", "s1", "s2", "s1", None, "s1"]),
        }
    )
    assert {k: v.tolist() for k, v in group_rows(frame, ["source", "stage"]).items()} == {
        ("crm", "s1"): [0],
        ("hub", "s1"): [1, 5],
        ("crm", "s2"): [2],
    }
    # only rows 1, 2, 4 and 5 asked for: positions still the frame's
    some = group_rows(frame, ["source"], np.array([1, 2, 4, 5]))
    assert {k: v.tolist() for k, v in some.items()} == {("hub",): [1, 5], ("crm",): [2, 4]}
    assert group_rows(frame.iloc[:0], ["source", "stage"]) == {}


# Each deal of a small history: (source, id, account, status, created day, closed day), the
# days counted from 1 Jan 2025 00:00 UTC (a half is noon). Its cases: wins before and after
# another deal of the account is created, a win created after the cutoff but closed before
# (an export's error), no account, won without a close date, open with one, created after.
CLOSING_DEALS = [
    ("crm", "A", "x", "won", 0, 10.5),
    ("crm", "B", "x", "open", 12, None),  # x had won (A) before B: existing
    ("crm", "C", "x", "lost", 5, 40),  # created before A's win: new; lost after day 30
    ("crm", "J", "y", "won", 50, 2),  # closed on day 2, created on day 50
    ("crm", "K", "y", "lost", 3, 20.5),  # new at day 30 (J unknown then), existing at 60
    ("crm", "N", None, "won", 1, 25),
    ("crm", "W", "x", "won", 2, None),  # won without a close date: never counted
    ("crm", "O", "y", "open", 4, 8),  # open with a close date: still open
    ("hub", "H1", "z", "lost", 6, 9),
    ("hub", "H2", "z", "open", 31, None),  # created after day 30
]
# Stage visits: (id, stage, entered day, closing stage)
CLOSING_VISITS = [
    ("A", "s1", 0, False),
    ("A", "s2", 5.25, False),
    ("A", "Won", 10.5, True),
    ("A", "s3", 11, False),  # entered after A closed: never counted
    ("B", "s1", 12, False),
    ("C", "s1", 5, False),
    ("C", "s2", 35, False),  # entered after day 30
    ("K", "s1", 3, False),
    ("K", "s2", 20, False),
    ("H1", "s1", 6, False),
    ("H2", "s1", 31, False),
]


def closing_history_warehouse(path):
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA marts")
    start = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
    con.execute(
        "CREATE TABLE marts.opportunities (source_system VARCHAR, opportunity_id VARCHAR, "
        "account_id VARCHAR, status VARCHAR, created_at TIMESTAMPTZ, closed_at TIMESTAMPTZ)"
    )
    for source, deal, account, status, created, closed in CLOSING_DEALS:
        con.execute(
            f"INSERT INTO marts.opportunities VALUES (?, ?, ?, ?, {start} + to_seconds(?), "
            f"{start} + to_seconds(?))",
            [
                source,
                deal,
                account,
                status,
                created * 86400,
                None if closed is None else closed * 86400,
            ],
        )
    con.execute(
        "CREATE TABLE marts.opportunity_lifecycle (source_system VARCHAR, opportunity_id VARCHAR, "
        "stage VARCHAR, entered_at TIMESTAMPTZ, is_closing_stage BOOLEAN)"
    )
    source_of = {d[1]: d[0] for d in CLOSING_DEALS}
    for deal, stage, entered, closing in CLOSING_VISITS:
        con.execute(
            f"INSERT INTO marts.opportunity_lifecycle VALUES (?, ?, ?, {start} + to_seconds(?), ?)",
            [source_of[deal], deal, stage, entered * 86400, closing],
        )
    return con


@pytest.mark.parametrize("cutoffs", [1, 2])
def test_each_cutoff_knows_the_closes_and_visits_before_it(tmp_path, cutoffs):
    """What the forecast's timing is fitted on at a cutoff, counted here by hand: deals
    created before it, closed only if they closed before it (else days to the cutoff), visits
    entered before the close or the cutoff, customer types from wins known then. The same
    whether the history is read for one cutoff (its days sorted) or for several (kept in
    order once, each cutoff's days merged)."""
    from forecast.closing_history import ClosingHistory, epoch_of

    con = closing_history_warehouse(tmp_path / "w.duckdb")
    day = lambda d: datetime(2025, 1, 1, tzinfo=ZoneInfo("UTC")) + timedelta(days=d)  # noqa: E731
    history = ClosingHistory.read(con, day(100), cutoffs=cutoffs)

    def rows(frame):
        out = frame.astype({c: object for c in frame.columns if frame[c].dtype == "category"})
        return sorted(tuple(r) for r in out.itertuples(index=False))

    at30 = history.at(epoch_of(con, day(30)))
    assert rows(at30.cycles) == sorted(
        [
            ("crm", 10.5, True),  # A
            ("crm", 18.0, False),  # B, open
            ("crm", 25.0, False),  # C, lost after the cutoff
            ("crm", 17.5, True),  # K
            ("crm", 24.0, True),  # N
            ("crm", 26.0, False),  # O
            ("hub", 3.0, True),  # H1
        ]
    )
    assert rows(at30.stages) == sorted(
        [
            ("crm", "new", "s1", 10.5, True),  # A: s1 from day 0 to its close
            ("crm", "new", "s2", 5.25, True),
            ("crm", "existing", "s1", 18.0, False),  # B, censored
            ("crm", "new", "s1", 25.0, False),  # C, censored
            ("crm", "new", "s1", 17.5, True),  # K: J's win not known yet
            ("crm", "new", "s2", 0.5, True),
            ("hub", "new", "s1", 3.0, True),
        ]
    )
    # each in ascending order of days, as the timing fits them (forecast.timing)
    for frame in (at30.cycles, at30.stages):
        assert (frame["days"].diff().dropna() >= 0).all()
    # closed before day 30: crm A, K, N (two won), hub H1 (lost)
    assert at30.base_rates == {"crm": 2 / 3, "hub": 0.0}

    at60 = history.at(epoch_of(con, day(60)))
    crm_cycles = [r for r in rows(at60.cycles) if r[0] == "crm"]
    assert crm_cycles == sorted(
        [
            ("crm", 10.5, True),
            ("crm", 48.0, False),
            ("crm", 35.0, True),  # C lost on day 40
            ("crm", -48.0, True),  # J, as exported: closed 48 days before it was created
            ("crm", 17.5, True),
            ("crm", 24.0, True),
            ("crm", 56.0, False),
        ]
    )
    k_visits = [r for r in rows(at60.stages) if r[3] in (17.5, 0.5)]
    assert k_visits == sorted(
        [("crm", "existing", "s2", 0.5, True), ("crm", "existing", "s1", 17.5, True)]
    )
    assert ("crm", "new", "s2", 5.0, True) in rows(at60.stages)  # C's s2, day 35 to 40
    assert at60.base_rates == {"crm": 3 / 5, "hub": 0.0}


def test_an_open_deals_customer_type_is_the_one_its_cutoffs_history_gives(tmp_path):
    """The open deals are timed on the stage curves of their customer type, so a deal's type
    at a cutoff must be the one the history gives the same deal then: existing only when a
    win of its account closed before it was created and was known at the cutoff. Account
    y's win J, as exported, closed on day 2 but was created on day 50: unknown at day 30."""
    from forecast.build import DEALS_AT_SQL, OPEN_DEALS_TABLE
    from forecast.closing_history import ClosingHistory, epoch_of

    con = closing_history_warehouse(tmp_path / "w.duckdb")
    day = lambda d: datetime(2025, 1, 1, tzinfo=ZoneInfo("UTC")) + timedelta(days=d)  # noqa: E731
    # the columns DEALS_AT_SQL reads beyond the history's, empty or constant here
    for column, kind in [
        ("owner_id", "VARCHAR"),
        ("owner_name", "VARCHAR"),
        ("team", "VARCHAR"),
        ("amount_reporting", "DECIMAL(18,2)"),
        ("stage", "VARCHAR"),
        ("expected_close_date", "DATE"),
    ]:
        con.execute(f"ALTER TABLE marts.opportunities ADD COLUMN {column} {kind}")
    con.execute("ALTER TABLE marts.opportunity_lifecycle ADD COLUMN visit_number INTEGER")
    con.execute("UPDATE marts.opportunity_lifecycle SET visit_number = 1")
    con.execute("CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE staging.stg_raw__opportunity_snapshots (source_system VARCHAR, "
        "opportunity_id VARCHAR, expected_close_date DATE, snapshot_date DATE)"
    )
    con.execute("CREATE SCHEMA intermediate")
    con.execute(
        "CREATE TABLE intermediate.int_stages_resolved (source_system VARCHAR, stage VARCHAR, "
        "default_probability DOUBLE)"
    )
    history = ClosingHistory.read(con, day(100))

    def types_at(cutoff_day: int) -> tuple[dict, dict]:
        cutoff = day(cutoff_day)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {OPEN_DEALS_TABLE} AS SELECT source_system, "
            "opportunity_id, CAST(NULL AS DOUBLE) AS win_probability FROM marts.opportunities "
            "WHERE created_at < $cutoff AND (status = 'open' OR closed_at >= $cutoff)",
            {"cutoff": cutoff},
        )
        rows = con.execute(
            f"SELECT d.opportunity_id, t.customer_type FROM ({DEALS_AT_SQL}) AS t "
            f"POSITIONAL JOIN (SELECT opportunity_id FROM {OPEN_DEALS_TABLE} "
            "ORDER BY source_system, opportunity_id) AS d",
            {"cutoff": cutoff, "current": False},
        ).fetchall()
        stages = history.at(epoch_of(con, cutoff)).stages
        by_history = {
            (float(r.days), str(r.stage)): str(r.customer_type)
            for r in stages.itertuples(index=False)
            if not r.closed
        }
        return dict(rows), by_history

    at30, history30 = types_at(30)
    # open at day 30, by hand: B (A's win closed on day 10.5, before B's creation on day 12),
    # C (created on day 5, before A's win; lost on day 40), O (J unknown at day 30)
    assert at30 == {"B": "existing", "C": "new", "O": "new"}
    # the history's open visits at day 30, censored there: B's s1 from day 12, C's s1 from 5
    assert history30[(18.0, "s1")] == at30["B"] and history30[(25.0, "s1")] == at30["C"]
    at60, _ = types_at(60)
    assert at60["O"] == "existing"  # J, created on day 50, is known at day 60
    assert at60["B"] == "existing" and "C" not in at60  # C lost on day 40


def test_interval_holds_the_expected_amount_and_matches_the_binomial():
    rng = np.random.default_rng(1)
    low, high = interval(np.array([1000.0]), np.array([0.05]), rng)
    assert low == 0 <= 50 <= high  # the 90th percentile is 0: widened to hold 50
    low, high = interval(np.full(50, 100.0), np.full(50, 0.5), rng)
    # Binomial(50, 0.5): the 10th and 90th percentiles are 21 and 29 wins
    cdf = np.cumsum([math.comb(50, k) / 2**50 for k in range(51)])
    p10, p90 = int(np.searchsorted(cdf, 0.1)), int(np.searchsorted(cdf, 0.9))
    assert abs(low - 100 * p10) <= 100 and abs(high - 100 * p90) <= 100
    many = interval(np.full(1000, 10.0), np.full(1000, 0.3), rng)  # normal approximation
    sd = math.sqrt(1000 * 100 * 0.3 * 0.7)
    assert math.isclose(many[0], 3000 - 1.2816 * sd, rel_tol=1e-3)


def ny(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()} {hour:02d}:00"


def month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=NEW_YORK)


def make_deals() -> tuple[list[dict], list[list[str]]]:
    """Closed deals over 14 months, and open deals whose close dates lie ahead; one open
    deal without an amount and past its close date; one created mid-May and won in May."""
    deals = []
    start = date(2024, 5, 1)
    for i in range(80):
        created = start + timedelta(days=5 * i)
        closed = created + timedelta(days=20 + (i * 7) % 50)
        if closed > AS_OF:
            continue
        won = i % 3 != 0
        deals.append(
            {
                "id": f"{7000 + i}",
                "stage": "Closed Won" if won else "Closed Lost",
                "amount": 1000 + 100 * (i % 7),
                "created": created,
                "close": closed,
                "owner": OWNERS[i % 2],
                "status": "won" if won else "lost",
            }
        )
    # created after 1 May, won in May: in May's actuals, never in May's forecast
    deals.append(
        {
            "id": "7999",
            "stage": "Closed Won",
            "amount": 50000,
            "created": date(2025, 5, 10),
            "close": date(2025, 5, 20),
            "owner": "Ann Lee",
            "status": "won",
        }
    )
    for i, (close, amount, stage) in enumerate(
        [
            (date(2025, 7, 15), 8000, "Contract Sent"),
            (date(2025, 7, 28), 3000, "Qualified To Buy"),
            (date(2025, 8, 3), 12000, "Decision Maker Bought-In"),
            (date(2025, 10, 9), 4000, "Appointment Scheduled"),
            (date(2026, 3, 1), 9000, "Contract Sent"),  # beyond the six months
            (date(2025, 6, 1), None, "Qualified To Buy"),  # overdue, no amount
        ]
    ):
        deals.append(
            {
                "id": f"8{i:03d}",
                "stage": stage,
                "amount": amount,
                "created": date(2025, 4, 1) + timedelta(days=7 * i),
                "close": close,
                "owner": OWNERS[i % 2],
                "status": "open",
            }
        )
    rows = [
        row(
            f"{d['id']}|Deal {d['id']}|{d['stage']}|Sales Pipeline|"
            f"{'' if d['amount'] is None else d['amount']}|{ny(d['close'], 16)}|"
            f"{ny(d['created'], 9)}|{d['owner']}|{'Price' if d['status'] == 'lost' else ''}"
        )
        for d in deals
    ]
    return deals, rows


@pytest.fixture(scope="module")
def forecast_folder(tmp_path_factory):
    data = tmp_path_factory.mktemp("forecast")
    deals, rows = make_deals()
    landing = data / "landing"
    write_csv(landing / "hubspot-crm-exports-all-deals-2025-06-30.csv", HEADER, rows)
    targets = [
        row(f"{o}||{m}|{t}") for o in OWNERS for m, t in (("2025-05", 20000), ("2025-07", 9000))
    ]
    targets.append(row("|Enterprise|2025-07|30000"))  # a team no deal belongs to
    write_csv(landing / "targets.csv", ["owner_id", "team", "month", "target_amount"], targets)
    (data / "oppwh.yml").write_text("timezone: America/New_York\ncurrency: USD\n")
    run_ok("--data-dir", str(data), "--landing", str(landing), "--as-of", AS_OF.isoformat())
    return data, deals


def test_expected_amounts_are_probability_times_amount_by_month(forecast_folder):
    data, deals = forecast_folder
    db = data / "serving.duckdb"
    probability = {
        r[0]: r[1] if r[1] is not None else r[2] / 100
        for r in query(
            db,
            "SELECT p.opportunity_id, p.win_probability, o.stage_probability "
            "FROM marts.opportunity_priority AS p JOIN marts.opportunities AS o "
            "USING (source_system, opportunity_id)",
        )
    }
    expected: dict[date, float] = {}
    for d in deals:
        if d["status"] == "open" and d["amount"] and d["close"] < date(2025, 12, 1):
            month = d["close"].replace(day=1)
            expected[month] = expected.get(month, 0.0) + probability[d["id"]] * d["amount"]
    rows = query(
        db,
        "SELECT forecast_month, sum(expected_amount), min(low_amount - expected_amount), "
        "min(high_amount - expected_amount), sum(open_deals) FROM marts.revenue_forecast "
        "GROUP BY 1 ORDER BY 1",
    )
    assert [r[0] for r in rows] == [date(2025, m, 1) for m in range(6, 12)]
    got = {r[0]: float(r[1]) for r in rows if r[1]}
    assert got.keys() == expected.keys()
    assert all(math.isclose(got[m], expected[m], abs_tol=0.02) for m in expected), (got, expected)
    assert all(r[2] <= 0 <= r[3] for r in rows)  # low <= expected <= high
    every = query(db, "SELECT low_amount, expected_amount, high_amount FROM marts.revenue_forecast")
    assert all(low <= mid <= high for low, mid, high in every)


def test_the_backtest_knows_only_the_deals_open_at_each_months_start(forecast_folder):
    data, deals = forecast_folder
    rows = query(
        data / "serving.duckdb",
        "SELECT month, open_deals, actual_amount, actual_from_open_deals, new_deal_amount, "
        "forecast_amount, low_amount, high_amount FROM marts.forecast_accuracy ORDER BY month",
    )
    assert [r[0] for r in rows] == [date(2024, 12, 1), *[date(2025, m, 1) for m in range(1, 6)]]
    for month, open_deals, actual, known, new, forecast, low, high in rows:
        start, end = month_start(month), month_start((month + timedelta(days=32)).replace(day=1))

        def local(day: date, hour: int) -> datetime:
            return datetime(day.year, day.month, day.day, hour, tzinfo=NEW_YORK)

        open_then = [
            d
            for d in deals
            if local(d["created"], 9) < start
            and (d["status"] == "open" or local(d["close"], 16) >= start)
        ]
        won_in_month = [
            d for d in deals if d["status"] == "won" and start <= local(d["close"], 16) < end
        ]
        assert open_deals == len(open_then), month
        assert float(actual) == sum(d["amount"] for d in won_in_month), month
        from_open = sum(d["amount"] for d in won_in_month if d in open_then)
        assert float(known) == from_open and float(new) == float(actual) - from_open, month
        assert low <= forecast <= high
    may = rows[-1]
    assert float(may[4]) == 50000  # the deal created in May: actual, never forecast


def test_attainment_counts_the_owners_wins_in_the_business_time_zone(forecast_folder):
    data, deals = forecast_folder
    rows = query(
        data / "serving.duckdb",
        "SELECT target_level, owner_id, team, month, target_amount, won_amount, attainment, "
        "open_pipeline, expected_amount, coverage, gap FROM marts.target_attainment",
    )
    assert len(rows) == 5  # one per target row
    forecast = dict(
        (
            (r[0], r[1]),
            (float(r[2]), float(r[3])),
        )
        for r in query(
            data / "serving.duckdb",
            "SELECT owner_id, forecast_month, sum(pipeline_amount), sum(expected_amount) "
            "FROM marts.revenue_forecast GROUP BY 1, 2",
        )
    )
    for level, owner, team, month, target, won, attainment, pipeline, expected, cover, gap in rows:
        if level == "team":
            assert (team, float(won), float(pipeline)) == ("Enterprise", 0.0, 0.0)
            continue
        by_hand = sum(
            d["amount"]
            for d in deals
            if d["owner"] == owner and d["status"] == "won" and d["close"].replace(day=1) == month
        )
        assert float(won) == by_hand and math.isclose(attainment, by_hand / float(target))
        if month == date(2025, 5, 1):  # past: nothing more can close in it
            assert (float(pipeline), float(expected), cover) == (0.0, 0.0, None)
            assert float(gap) == float(target) - by_hand
        else:
            assert (float(pipeline), float(expected)) == pytest.approx(
                forecast[(owner, month)], abs=0.01
            )
            assert math.isclose(cover, float(pipeline) / (float(target) - by_hand))
            assert math.isclose(float(gap), float(target) - by_hand - float(expected), abs_tol=0.02)


TARGETS_MAPPING = """
name: 简道云 销售目标
source_system: jdy
table: targets
current_state: false
match: [销售, 月份, 目标]
columns:
  owner_id: 销售
  team: 小组
  month: 月份
  target_amount: 目标
"""


def test_targets_in_another_shape_load_by_mapping_and_bad_rows_are_named(tmp_path):
    """A Chinese CRM's target sheet (目标 in 万, 2025年7月) through a mapping; a row naming
    neither an owner nor a team is rejected with its row and reason, the rest still load."""
    deals, rows = make_deals()
    landing = tmp_path / "landing"
    write_csv(landing / "hubspot-crm-exports-all-deals-2025-06-30.csv", HEADER, rows)
    write_csv(
        landing / "销售目标.csv",
        ["销售", "小组", "月份", "目标"],
        [row("Ann Lee||2025年5月|2万"), row("||2025年5月|3万"), row("Bob Wu||2025/7|0.9万")],
    )
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "jdy_targets.yml").write_text(TARGETS_MAPPING, encoding="utf-8")
    (tmp_path / "oppwh.yml").write_text("timezone: America/New_York\ncurrency: USD\n")
    run_ok("--data-dir", str(tmp_path), "--landing", str(landing), "--as-of", AS_OF.isoformat())
    db = tmp_path / "warehouse.duckdb"
    [(file, line, column, reason)] = query(
        db, "SELECT file_name, row_number, column_name, reason FROM raw.rejects"
    )
    assert (file, line) == ("销售目标.csv", 3) and "owner_id or team" in reason, reason  # line 3
    assert "owner_id" in column and "team" in column
    got = query(
        db,
        "SELECT owner_id, month, target_amount, won_amount FROM marts.target_attainment "
        "ORDER BY month",
    )
    may_won = sum(
        d["amount"]
        for d in deals
        if d["owner"] == "Ann Lee"
        and d["status"] == "won"
        and d["close"].replace(day=1) == date(2025, 5, 1)
    )
    assert [(o, m, float(t), float(w)) for o, m, t, w in got] == [
        ("Ann Lee", date(2025, 5, 1), 20000.0, may_won),
        ("Bob Wu", date(2025, 7, 1), 9000.0, 0.0),
    ]


def test_two_different_targets_for_one_month_block_the_file_and_keep_what_was_loaded(
    forecast_folder,
):
    import shutil

    from orchestration.cli import main

    data, _ = forecast_folder
    copy = data.parent / "forecast_blocked"
    shutil.copytree(data, copy)
    before = query(copy / "warehouse.duckdb", "SELECT * FROM marts.target_attainment ORDER BY ALL")
    landing = copy / "landing2"
    write_csv(
        landing / "targets.csv",
        ["owner_id", "team", "month", "target_amount"],
        [row("Ann Lee||2025-08|5000"), row("Ann Lee||2025-08|6000")],
    )
    code = main(
        ["run", "--data-dir", str(copy), "--landing", str(landing), "--as-of", AS_OF.isoformat()]
    )
    assert code != 0
    log = (copy / "logs" / "last_run.log").read_text()
    assert "targets.csv" in log and "targets_unique_in_export" in log, log[-3000:]
    after = query(copy / "warehouse.duckdb", "SELECT * FROM marts.target_attainment ORDER BY ALL")
    assert after == before
