"""Any CRM, any country: a US company's export in a shape no one here made (four stages,
start and close given as days, blank start dates on early-stage deals, a value column,
accounts, teams, no activities, blank accounts), brought in by mapping files and
settings only. Every expected figure is computed here from the generated rows."""

from __future__ import annotations

import csv
import random
import statistics
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestration.cli import main
from tests.conftest import keyed, query

pytestmark = pytest.mark.e2e

AS_OF = date(2024, 12, 31)
EXPORT_DAY = date(2024, 12, 30)  # written in the deals file's name
NY = ZoneInfo("America/New_York")
AGENTS = {
    "Moses Frase": ("Dustin Brinkmann", "Central"),
    "Darcel Schlecht": ("Melvin Marxen", "Central"),
    "Versie Hillebrand": ("Cara Losch", "East"),
    "Anna Snelling": ("Cara Losch", "East"),
    "Kami Bicknell": ("Rocco Neubert", "West"),
}
ACCOUNTS = {
    "Acme Corporation": ("technolgy", 2822, "United States"),
    "Betasoloin": ("medical", 495, "United States"),
    "Cheers": ("entertainment", 4253, "United States"),
    "Codehow": ("software", 2641, "Philippines"),
    "Dontechi": ("software", 4534, "United States"),
    "Finjob": ("employment", 2123, "United States"),
}
PRODUCTS = ["GTX Basic", "GTX Pro", "MG Special", "MG Advanced", "GTK 500"]


def generate_deals(n: int = 240, seed: int = 5) -> list[dict]:
    """Maven-style pipeline rows: Prospecting deals have no engage date; open deals no close
    date or value; lost deals a value of 0; some deals no account."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        stage = rng.choices(["Prospecting", "Engaging", "Won", "Lost"], [2, 3, 5, 4])[0]
        engage = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 300))
        close = engage + timedelta(days=rng.randrange(1, 120))
        if close > AS_OF:
            close = AS_OF
        rows.append(
            {
                "opportunity_id": f"{rng.getrandbits(32):08X}",
                "sales_agent": rng.choice(list(AGENTS)),
                "product": rng.choice(PRODUCTS),
                "account": "" if rng.random() < 0.15 else rng.choice(list(ACCOUNTS)),
                "deal_stage": stage,
                "engage_date": "" if stage == "Prospecting" else engage.isoformat(),
                "close_date": close.isoformat() if stage in ("Won", "Lost") else "",
                "close_value": str(rng.randrange(50, 30000))
                if stage == "Won"
                else ("0" if stage == "Lost" else ""),
            }
        )
    return rows


def write(path: Path, rows: list[dict] | list[list], header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if header is None:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        else:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)


MAPPINGS = {
    "maven_deals.yml": """
name: maven deals
source_system: maven
table: opportunities
match: [opportunity_id, sales_agent, deal_stage, close_value]
columns:
  opportunity_id: opportunity_id
  opportunity_name: [product]
  account_id: account
  owner_id: sales_agent
  stage: deal_stage
  status: deal_stage
  amount: close_value
  created_at: [engage_date]
  closed_at: close_date
values:
  status: {Won: won, Lost: lost, Prospecting: open, Engaging: open}
defaults:
  created_at: export_date
""",
    "maven_accounts.yml": """
name: maven accounts
source_system: maven
table: accounts
match: [account, sector, employees]
columns:
  account_id: account
  account_name: account
  industry: sector
  employees: employees
  region: office_location
""",
    "maven_teams.yml": """
name: maven teams
source_system: maven
table: owners
match: [sales_agent, manager, regional_office]
columns:
  owner_id: sales_agent
  owner_name: sales_agent
  team: regional_office
  manager_id: manager
""",
}


@pytest.fixture(scope="module")
def us_warehouse(tmp_path_factory) -> tuple[Path, list[dict]]:
    data = tmp_path_factory.mktemp("us") / "data"
    deals = generate_deals()
    landing = data / "landing"
    write(landing / f"sales_pipeline_{EXPORT_DAY:%Y%m%d}.csv", deals)
    write(
        landing / "accounts.csv",
        [[a, s, e, o] for a, (s, e, o) in ACCOUNTS.items()],
        ["account", "sector", "employees", "office_location"],
    )
    write(
        landing / "sales_teams.csv",
        [[a, m, r] for a, (m, r) in AGENTS.items()],
        ["sales_agent", "manager", "regional_office"],
    )
    # the pipeline's own stages, as a native stage_definitions export
    write(
        landing / "stage_definitions.csv",
        [
            ["maven", "Prospecting", 1, "false", "false", 10],
            ["maven", "Engaging", 2, "false", "false", 40],
            ["maven", "Won", 90, "true", "true", 100],
            ["maven", "Lost", 90, "true", "false", 0],
        ],
        ["source_system", "stage", "stage_order", "is_closed", "is_won", "default_probability"],
    )
    for name, text in MAPPINGS.items():
        (data / "mappings").mkdir(parents=True, exist_ok=True)
        (data / "mappings" / name).write_text(text.lstrip(), encoding="utf-8")
    (data / "oppwh.yml").write_text("timezone: America/New_York\ncurrency: USD\n")
    assert main(["run", "--data-dir", str(data), "--as-of", AS_OF.isoformat()]) == 0
    return data, deals


def test_every_deal_loads_blank_start_dates_from_the_export_date(us_warehouse):
    data, deals = us_warehouse
    serving = data / "serving.duckdb"
    assert query(data / "warehouse.duckdb", "SELECT count(*) FROM raw.rejects") == [(0,)]
    got = dict(query(serving, "SELECT status, count(*) FROM marts.opportunities GROUP BY 1"))
    status = {"Won": "won", "Lost": "lost", "Prospecting": "open", "Engaging": "open"}
    expected: dict[str, int] = {}
    for d in deals:
        expected[status[d["deal_stage"]]] = expected.get(status[d["deal_stage"]], 0) + 1
    assert got == expected
    blank = {d["opportunity_id"] for d in deals if not d["engage_date"]}
    estimated = query(
        serving,
        "SELECT opportunity_id, CAST(created_at AS DATE) FROM marts.opportunities "
        "WHERE is_created_at_estimated",
    )
    assert {r[0] for r in estimated} == blank and blank
    assert {r[1] for r in estimated} == {EXPORT_DAY}, "the export date, in New York"
    # the quality report counts them
    report = query(
        data / "warehouse.duckdb",
        "SELECT count(*) FROM marts.opportunities WHERE estimated_columns = 'created_at'",
    )
    assert report == [(len(blank),)]


def test_days_are_new_york_days_and_amounts_are_dollars(us_warehouse):
    data, deals = us_warehouse
    serving = data / "serving.duckdb"
    rows = query(
        serving,
        "SELECT opportunity_id, created_at, currency FROM marts.opportunities "
        "WHERE NOT is_created_at_estimated",
    )
    engage = {d["opportunity_id"]: d["engage_date"] for d in deals}
    for opp_id, created_at, currency in rows:
        local = created_at.astimezone(NY)
        assert (local.date().isoformat(), local.hour, local.minute) == (engage[opp_id], 0, 0)
        assert currency == "USD"
    won = [d for d in deals if d["deal_stage"] == "Won"]
    assert query(serving, "SELECT sum(amount) FROM marts.opportunities WHERE status = 'won'") == [
        (sum(int(d["close_value"]) for d in won),)
    ]
    # the team's totals are in its own currency too, not converted into another
    assert query(
        serving,
        "SELECT DISTINCT reporting_currency, amount_reporting = amount FROM marts.opportunities "
        "WHERE amount IS NOT NULL",
    ) == [("USD", True)]
    # cycle days counted on the calendar, across daylight-saving changes too
    cycle = dict(query(serving, "SELECT opportunity_id, cycle_time_days FROM marts.cycle_time"))
    for d in won:
        days = (date.fromisoformat(d["close_date"]) - date.fromisoformat(d["engage_date"])).days
        assert cycle[d["opportunity_id"]] == days, d
    [(p50,)] = query(
        serving,
        "SELECT median(cycle_time_days) FROM marts.cycle_time WHERE outcome = 'won'",
    )
    assert p50 == statistics.median(
        (date.fromisoformat(d["close_date"]) - date.fromisoformat(d["engage_date"])).days
        for d in won
    )


def test_win_rate_and_wins_per_rep(us_warehouse):
    data, deals = us_warehouse
    got = keyed(
        data / "serving.duckdb",
        "SELECT owner_id, won_deals, lost_deals, win_rate FROM marts.owner_performance",
    )
    for agent in AGENTS:
        mine = [d for d in deals if d["sales_agent"] == agent]
        won = sum(d["deal_stage"] == "Won" for d in mine)
        lost = sum(d["deal_stage"] == "Lost" for d in mine)
        assert got[agent][:2] == (won, lost)
        assert got[agent][2] == pytest.approx(won / (won + lost), abs=1e-4)


def test_own_stages_are_known_and_the_funnel_is_not_biased(us_warehouse):
    data, deals = us_warehouse
    warehouse = data / "warehouse.duckdb"
    assert query(
        warehouse,
        "SELECT count(*) FROM quality.check_results WHERE NOT passed AND check_name LIKE '%stage%'",
    ) == [(0,)], "the loaded stage definitions are known to every stage check"
    funnel = keyed(
        data / "serving.duckdb",
        "SELECT stage, reached, advanced, won, still_open, path_unknown "
        "FROM marts.funnel_conversion ORDER BY stage_order",
    )
    # Won and lost deals are exported only in their closing stage: their path is unknown.
    open_stage = {"Prospecting": 1, "Engaging": 2}
    open_deals = [d for d in deals if d["deal_stage"] in open_stage]
    closed = [d for d in deals if d["deal_stage"] not in open_stage]
    assert list(funnel) == ["Prospecting", "Engaging"]
    assert funnel["Prospecting"] == (
        len(open_deals),
        sum(d["deal_stage"] == "Engaging" for d in open_deals),
        0,
        len(open_deals),
        len(closed),
    )
    assert funnel["Engaging"][0] == sum(d["deal_stage"] == "Engaging" for d in open_deals)
    assert funnel["Engaging"][2] == 0, "a won deal never seen in an open stage inflates nothing"


def test_write_back_speaks_english_for_an_english_crm(us_warehouse, tmp_path):
    import pandas as pd

    from scoring.config import load_config
    from scoring.writeback import write_exports

    data, _ = us_warehouse
    today = pd.DataFrame(
        query(
            data / "serving.duckdb",
            "SELECT source_system, opportunity_id, opportunity_name, score, grade, reasons, "
            "previous_grade FROM marts.opportunity_priority",
        ),
        columns=[
            "source_system",
            "opportunity_id",
            "opportunity_name",
            "score",
            "grade",
            "reasons",
            "previous_grade",
        ],
    )
    result = write_exports(today, tmp_path, AS_OF, load_config(None))
    latest = next(p for p in result.files if p.name == "priority_latest.csv")
    with latest.open(encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle))
    assert header == ["Opportunity ID", "Priority Grade", "Priority Score", "Priority Reasons"]


# --- grades on an export whose outcomes carry no signal -----------------------------------


def test_no_signal_means_near_chance_and_no_write_back(us_warehouse):
    data, deals = us_warehouse
    [(auc_value, better, status, scored)] = query(
        data / "serving.duckdb",
        "SELECT auc, is_better_than_chance, writeback_status, closed_deals_scored "
        "FROM marts.scoring_validation WHERE source_system = 'maven'",
    )
    closed = sum(d["deal_stage"] in ("Won", "Lost") for d in deals)
    assert scored == closed >= 100
    assert abs(auc_value - 0.5) < 0.1 and better is False and status == "withheld"
    folder = data / "exports" / "maven"
    assert not (folder / "priority_latest.csv").exists()
    note = (folder / "NOT_WRITTEN.txt").read_text(encoding="utf-8")
    assert "no better than chance" in note and "writeback_gate: always" in note
    # the scores stay in the marts
    assert query(data / "serving.duckdb", "SELECT count(*) FROM marts.opportunity_priority") == [
        (sum(d["deal_stage"] in ("Prospecting", "Engaging") for d in deals),)
    ]
    history = query(
        data / "serving.duckdb", "SELECT count(*) FROM marts.scoring_validation_history"
    )
    assert history == [(1,)]


def test_signals_without_data_or_filled_by_the_outcome_are_left_out(us_warehouse):
    data, _ = us_warehouse
    signals = keyed(
        data / "serving.duckdb",
        "SELECT signal, used, left_out_because, coverage_open, weight "
        "FROM marts.scoring_signals WHERE source_system = 'maven'",
    )
    for engagement in ("recency", "frequency", "engagement_trend"):
        assert signals[engagement][0] is False
        assert "no activities linked to a deal exported" in signals[engagement][1]
    # close_value: 0 on every lost deal, blank on every open one: the outcome, not a signal
    assert (
        signals["deal_amount"][0] is False and "filled by the outcome" in signals["deal_amount"][1]
    )
    assert signals["deal_amount"][2] == 0.0
    used = [s for s, r in signals.items() if r[0]]
    assert used and sum(signals[s][3] for s in used) == pytest.approx(100.0, abs=0.1)


def test_reasons_never_speak_of_data_the_deal_does_not_have(us_warehouse):
    data, deals = us_warehouse
    reasons = dict(
        query(
            data / "serving.duckdb",
            "SELECT opportunity_id, reasons FROM marts.opportunity_priority",
        )
    )
    no_account = {d["opportunity_id"] for d in deals if not d["account"]}
    assert no_account & set(reasons)
    for opp_id, text in reasons.items():
        assert "follow" not in text and "跟进" not in text, text  # no activities exported
        assert "typical deal" not in text, text  # no amount on open deals
        if opp_id in no_account:
            assert "account won" not in text and "existing customer" not in text, text


def test_learned_mode_does_not_learn_the_outcome_from_the_amount(us_warehouse, tmp_path):
    import duckdb

    from scoring.config import DEFAULT_CONFIG, load_config
    from scoring.model import score_and_calibrate

    data, _ = us_warehouse
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace("mode: rules", "mode: learned")
    text = text.replace("min_won: 200", "min_won: 30").replace("min_lost: 200", "min_lost: 30")
    (tmp_path / "scoring.yml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'America/New_York'")
        run = score_and_calibrate(con, config, datetime(2025, 1, 1, tzinfo=NY))
    assert run.scorer.mode == "learned"
    [verdict] = [v for v in run.verdicts if v.source_system == "maven"]
    assert verdict.auc is not None and abs(verdict.auc - 0.5) < 0.15, verdict
    assert verdict.writeback_status == "withheld"
    assert any("deal_amount" in m and "filled by the outcome" in m for m in run.messages())


def test_lifecycle_keeps_a_stage_entered_on_the_close_day(tmp_path):
    """A Salesforce deal entered Negotiation at 23:00 UTC the day before its CloseDate
    (07:00 on the close day in Shanghai): the Negotiation visit is kept, the closing visit
    starts at that entry, and previous_stage names it."""
    data = tmp_path / "data"
    landing = data / "landing"
    header = [
        "Id",
        "Name",
        "StageName",
        "Amount",
        "CloseDate",
        "CreatedDate",
        "IsClosed",
        "IsWon",
        "OwnerId",
        "AccountId",
    ]
    write(
        landing / "Opportunity.csv",
        [
            [
                "0061",
                "Deal",
                "Closed Won",
                "1000",
                "2025-03-10",
                "2025-02-01T02:00:00.000+0000",
                "true",
                "true",
                "0051",
                "0011",
            ]
        ],
        header,
    )
    write(
        landing / "OpportunityHistory.csv",
        [
            ["0081", "0061", "Prospecting", "2025-02-01T02:00:00.000+0000"],
            ["0082", "0061", "Negotiation/Review", "2025-03-09T23:00:00.000+0000"],
            ["0083", "0061", "Closed Won", "2025-03-10T03:00:00.000+0000"],
        ],
        ["Id", "OpportunityId", "StageName", "CreatedDate"],
    )
    assert main(["run", "--data-dir", str(data), "--as-of", "2025-03-31"]) == 0
    visits = query(
        data / "serving.duckdb",
        "SELECT stage, previous_stage, entered_at FROM marts.opportunity_lifecycle "
        "WHERE opportunity_id = '0061' ORDER BY visit_number",
    )
    assert [v[:2] for v in visits] == [
        ("Prospecting", None),
        ("Negotiation/Review", "Prospecting"),
        ("Closed Won", "Negotiation/Review"),
    ]
    negotiation = datetime(2025, 3, 9, 23, tzinfo=ZoneInfo("UTC"))
    assert visits[1][2] == negotiation and visits[2][2] >= negotiation


def test_a_run_long_after_the_data_warns_naming_both_dates():
    from orchestration.cli.run import stale_data_warning

    warning = stale_data_warning(date(2025, 6, 30), date(2025, 11, 29))
    assert "2025-06-30" in warning and "2025-11-29" in warning and "152 days" in warning
    assert stale_data_warning(date(2025, 6, 30), date(2025, 7, 15)) is None


def test_inspect_names_the_closest_format_counts_problems_and_says_blank(tmp_path, capsys):
    native = tmp_path / "deals.csv"
    write(
        native,
        [[f"N-{i}", f"deal {i}", "Prospecting", "100"] for i in range(3)],
        ["opportunity_id", "opportunity_name", "stage", "amount"],
    )
    assert main(["inspect", str(native), "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Closest format: native opportunities" in out and "created_at" in out
    assert "hubspot" not in out.lower()
    blanks = tmp_path / "blanks.csv"
    write(
        blanks,
        [[f"B-{i}", "x", ""] for i in range(60)],
        ["opportunity_id", "opportunity_name", "created_at"],
    )
    main(["inspect", str(blanks), "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "value blank / 空" in out and "None" not in out
    assert "… and 10 more" in out
    stages = tmp_path / "stage_definitions.csv"
    write(
        stages,
        [["mycrm", "Engaging", 2, "false", "false"]],
        ["source_system", "stage", "stage_order", "is_closed", "is_won"],
    )
    assert main(["inspect", str(stages), "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stage_definitions" in out and "source_system (per row" in out
    assert "Kept in `extra`" not in out


def test_settings_are_checked_and_name_the_file_and_key(tmp_path):
    from ingestion.config import read_config
    from ingestion.formats.mapping_file import MappingFileError

    (tmp_path / "oppwh.yml").write_text(
        "timezone: Europe/Berlin\ncurrency: eur\nsources:\n  hubspot: {timezone: America/Chicago}\n"
    )
    config = read_config(tmp_path)
    assert (config.timezone, config.currency) == ("Europe/Berlin", "EUR")
    assert config.timezone_for("hubspot") == "America/Chicago"
    assert config.timezone_for("salesforce") == "Europe/Berlin"
    assert config.currency_for("hubspot") == "EUR"
    (tmp_path / "oppwh.yml").write_text("sources:\n  hubspot: {timezone: Mars/Olympus}\n")
    with pytest.raises(
        MappingFileError, match="oppwh.yml: sources.hubspot.timezone 'Mars/Olympus'"
    ):
        read_config(tmp_path)
    (tmp_path / "oppwh.yml").write_text("currency: dollars\n")
    with pytest.raises(MappingFileError, match="currency 'dollars' is not a 3-letter ISO code"):
        read_config(tmp_path)
    assert read_config(tmp_path / "none").timezone == "Asia/Shanghai", "the shipped default"


def test_sample_and_run_share_today_in_the_business_time_zone(tmp_path, capsys):
    from warehouse.settings import today_in

    data = tmp_path / "data"
    data.mkdir()
    (data / "oppwh.yml").write_text("timezone: Pacific/Auckland\n", encoding="utf-8")
    assert main(["sample", "--out", str(data / "landing"), "--opportunities", "12"]) == 0
    out = capsys.readouterr().out
    assert f"as of {today_in('Pacific/Auckland')}" in out
