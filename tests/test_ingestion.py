"""Loading landing files into raw: ledger, rejects, whole-or-nothing, formats and encodings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion import load as load_module
from ingestion.load import LoadSettings, load_landing

AS_OF = date(2025, 6, 30)
SETTINGS = LoadSettings(as_of=AS_OF)


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("SET TimeZone = 'Asia/Shanghai'")
    yield connection
    connection.close()


def rows(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


OPPS = (
    "opportunity_id,opportunity_name,owner_id,stage,status,amount,created_at,closed_at\n"
    "O-1,华信ERP,U1,初步接触,进行中,12.5万,2025-03-05 14:20,\n"
    'O-2,恒达CRM,U2,赢单,赢单,"¥8,000",2025/3/5 09:00,2025年4月1日\n'
    "O-3,Acme,U1,输单,lost,8000元,2025-01-02T08:00:00+0000,2025-02-01 10:00:00\n"
)


def test_loads_native_csv_and_parses_values(tmp_path, con):
    landing = tmp_path / "landing"
    write(landing / "opportunities.csv", OPPS)
    [outcome] = load_landing(con, landing, SETTINGS)
    assert (outcome.status, outcome.table, outcome.rows_loaded, outcome.rows_rejected) == (
        "loaded",
        "opportunities",
        3,
        0,
    )
    got = dict(rows(con, "SELECT opportunity_id, amount FROM raw.opportunities"))
    assert {k: float(v) for k, v in got.items()} == {"O-1": 125000.0, "O-2": 8000.0, "O-3": 8000.0}
    created = dict(rows(con, "SELECT opportunity_id, created_at FROM raw.opportunities"))
    # No offset: business time zone (UTC+8). With an offset: that instant.
    assert created["O-1"].astimezone(UTC) == datetime(2025, 3, 5, 6, 20, tzinfo=UTC)
    assert created["O-3"].astimezone(UTC) == datetime(2025, 1, 2, 8, 0, tzinfo=UTC)
    [(closed,)] = rows(con, "SELECT closed_at FROM raw.opportunities WHERE opportunity_id = 'O-2'")
    assert closed.astimezone(UTC) == datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
    lineage = rows(
        con, "SELECT DISTINCT source_system, _file_name, _export_date FROM raw.opportunities"
    )
    assert lineage == [("native", "opportunities.csv", AS_OF)]
    assert sorted(r[0] for r in rows(con, "SELECT _row_number FROM raw.opportunities")) == [2, 3, 4]


def test_second_load_of_same_file_changes_nothing(tmp_path, con):
    landing = tmp_path / "landing"
    write(landing / "opportunities.csv", OPPS)
    load_landing(con, landing, SETTINGS)
    before = rows(con, "SELECT * FROM raw.opportunities ORDER BY opportunity_id")
    [again] = load_landing(con, landing, SETTINGS)
    assert again.status == "skipped"
    assert rows(con, "SELECT * FROM raw.opportunities ORDER BY opportunity_id") == before
    ledger = rows(con, "SELECT file_name, status FROM raw.load_ledger ORDER BY load_id")
    assert ledger == [("opportunities.csv", "loaded"), ("opportunities.csv", "skipped")]
    assert (landing / "opportunities.csv").exists(), "landing files are never deleted"


def test_bad_values_go_to_rejects_with_row_column_and_reason(tmp_path, con):
    landing = tmp_path / "landing"
    write(
        landing / "deals.csv",
        "opportunity_id,amount,created_at\n"
        "O-1,100,2025-03-01\n"
        "O-2,100,not a date\n"
        ",100,2025-03-02\n"
        "O-4,lots,2025-03-03\n"
        "O-5,5万,2025-03-04\n",
    )
    [outcome] = load_landing(con, landing, SETTINGS)
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (
        "loaded",
        5,
        2,
        3,
    )
    rejects = rows(
        con,
        "SELECT file_name, row_number, column_name, value, reason "
        "FROM raw.rejects ORDER BY row_number",
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rejects] == [
        ("deals.csv", 3, "created_at", "not a date"),
        ("deals.csv", 4, "opportunity_id", None),
        ("deals.csv", 5, "amount", "lots"),
    ]
    assert "expected a date and time" in rejects[0][4]
    assert "missing required value" in rejects[1][4]
    assert "12.5万" in rejects[2][4]
    assert sorted(r[0] for r in rows(con, "SELECT opportunity_id FROM raw.opportunities")) == [
        "O-1",
        "O-5",
    ]
    [(rejected,)] = rows(con, "SELECT rows_rejected FROM raw.load_ledger WHERE status = 'loaded'")
    assert rejected == 3


def test_file_loads_whole_or_not_at_all(tmp_path, con, monkeypatch):
    landing = tmp_path / "landing"
    write(landing / "opportunities.csv", OPPS)
    real = load_module._ledger_row

    def crash_after_insert(*args, **kwargs):
        raise RuntimeError("disk full")  # after the rows were inserted, before commit

    monkeypatch.setattr(load_module, "_ledger_row", crash_after_insert)
    with pytest.raises(RuntimeError):
        load_landing(con, landing, SETTINGS)
    assert rows(con, "SELECT count(*) FROM raw.opportunities") == [(0,)]
    assert rows(con, "SELECT count(*) FROM raw.load_ledger") == [(0,)]

    monkeypatch.setattr(load_module, "_ledger_row", real)
    [outcome] = load_landing(con, landing, SETTINGS)
    assert outcome.status == "loaded"
    assert rows(con, "SELECT count(*) FROM raw.opportunities") == [(3,)]


def test_unrecognised_file_is_set_aside_and_others_load(tmp_path, con):
    landing = tmp_path / "landing"
    write(landing / "a_notes.csv", "客户,备注\n华信,下周回访\n")
    write(landing / "b_opportunities.csv", OPPS)
    outcomes = {o.file_name: o for o in load_landing(con, landing, SETTINGS)}
    notes = outcomes["a_notes.csv"]
    assert notes.status == "set_aside"
    assert "客户" in notes.message and "备注" in notes.message
    assert outcomes["b_opportunities.csv"].status == "loaded"
    [(status, message)] = rows(
        con, "SELECT status, message FROM raw.load_ledger WHERE file_name = 'a_notes.csv'"
    )
    assert status == "set_aside" and "no known export format" in message


def test_missing_required_column_names_closest_format_and_what_it_lacks(tmp_path, con):
    landing = tmp_path / "landing"
    write(landing / "opportunities.csv", "opportunity_id,stage,amount\nO-1,初步接触,100\n")
    [outcome] = load_landing(con, landing, SETTINGS)
    assert outcome.status == "set_aside"
    assert "native opportunities" in outcome.message and "created_at" in outcome.message


def test_header_in_any_order_extra_columns_kept_bom_crlf_semicolon(tmp_path, con):
    landing = tmp_path / "landing"
    text = (
        "\ufeffCreated_At;Status;Opportunity_ID;区域;Priority Note\n"
        "2025-05-01 10:00;赢单;X-1;华东;key deal\n"
        "2025-05-02 11:00;进行中;X-2;华北;\n"
    )
    write(landing / "export from other tool.csv", text, newline="\r\n")
    [outcome] = load_landing(con, landing, SETTINGS)
    assert outcome.status == "loaded" and outcome.table == "opportunities"
    got = rows(con, "SELECT opportunity_id, status, extra FROM raw.opportunities ORDER BY 1")
    assert [(r[0], r[1]) for r in got] == [("X-1", "赢单"), ("X-2", "进行中")]
    assert json.loads(got[0][2]) == {"区域": "华东", "Priority Note": "key deal"}


def test_gb18030_file_is_transcoded(tmp_path, con):
    landing = tmp_path / "landing"
    write(
        landing / "accounts.csv",
        "account_id,account_name,industry\nA-1,华信科技有限公司,制造业\n",
        encoding="gb18030",
    )
    [outcome] = load_landing(con, landing, SETTINGS)
    assert outcome.status == "loaded"
    assert rows(con, "SELECT account_name, industry FROM raw.accounts") == [
        ("华信科技有限公司", "制造业")
    ]


@pytest.mark.parametrize("first_row", ["plain", "quoted line break", "too many fields"])
def test_gbk_rows_after_a_megabyte_of_utf8_refuse_the_file(tmp_path, con, first_row):
    """Encoding detection stops once a file has shown plenty of UTF-8 Chinese; GBK bytes
    further down (two encodings in one file) are found by the reader, which refuses the
    file and names the line, whichever way it reads (a quoted line break reads serially);
    nothing of it is loaded, and a clean file beside it still loads."""
    landing = tmp_path / "landing"
    header = "account_id,account_name,industry\n"
    first = {
        "plain": "A-0,华信科技,制造业\n",
        "quoted line break": '"A-0","华信\n科技",制造业\n',
        "too many fields": "A-0,华信科技,制造业,多余,多余\n",  # read line by line, kept going
    }[first_row]
    utf8 = [f"A-{i},华信科技有限公司第{i}分公司,制造业\n" for i in range(1, 40_000)]
    body = (header + first + "".join(utf8)).encode("utf-8")
    assert len(body) > 2 * 2**20  # past the first megabyte the detection reads
    gbk_line = 2 + 1 + len(utf8)  # the header is line 1
    (landing).mkdir()
    (landing / "accounts.csv").write_bytes(body + "A-X,国标编码客户,零售\n".encode("gbk"))
    write(landing / "owners.csv", "owner_id,owner_name\nU1,王伟\n")
    outcomes = {o.file_name: o for o in load_landing(con, landing, SETTINGS)}
    refused = outcomes["accounts.csv"]
    assert refused.status == "failed"
    assert "mixes text encodings" in refused.message
    if first_row != "quoted line break":  # (DuckDB counts that cell's two lines as one)
        assert f"line {gbk_line}" in refused.message
    assert rows(con, "SELECT count(*) FROM raw.accounts") == [(0,)]
    assert outcomes["owners.csv"].status == "loaded"
    assert rows(con, "SELECT owner_name FROM raw.owners") == [("王伟",)]


def test_a_utf8_file_with_a_few_accents_is_still_read_whole_before_it_is_settled(tmp_path):
    """A few non-ASCII characters early do not settle a file as UTF-8 (a GBK file's first
    Chinese can happen to decode): an ASCII file with two accents, then GBK, is GBK."""
    from ingestion.files import detect_encoding

    path = tmp_path / "accounts.csv"
    text = "account_id,account_name\nA-1,Café Noël\n" + "A-2,plain\n" * 200_000
    path.write_bytes(text.encode("utf-8") + "A-3,国标\n".encode("gbk"))
    with pytest.raises(Exception, match="mixes text encodings"):
        detect_encoding(path)
    path.write_bytes(
        ("account_id,account_name\n" + "A-2,plain\n" * 200_000).encode()
        + "A-3,国标编码\n".encode("gbk")
    )
    assert detect_encoding(path) == "gb18030"


def test_header_only_empty_and_binary_files(tmp_path, con):
    landing = tmp_path / "landing"
    write(landing / "a_activities.csv", "activity_id,occurred_at\n")
    write(landing / "b_empty.csv", "")
    (landing / "c_binary.csv").write_bytes(b"PK\x03\x04\x00\x00binary\x00data")
    outcomes = {o.file_name: o for o in load_landing(con, landing, SETTINGS)}
    assert outcomes["a_activities.csv"].status == "loaded"
    assert outcomes["a_activities.csv"].rows_read == 0
    assert outcomes["b_empty.csv"].status == "failed"
    assert "empty" in outcomes["b_empty.csv"].message
    assert outcomes["c_binary.csv"].status == "failed"
    assert "NUL" in outcomes["c_binary.csv"].message


def test_every_row_rejected_sets_file_aside_and_keeps_reasons(tmp_path, con):
    landing = tmp_path / "landing"
    write(landing / "activities.csv", "activity_id,occurred_at\nA1,yesterday\nA2,soon\n")
    [outcome] = load_landing(con, landing, SETTINGS)
    assert outcome.status == "set_aside" and outcome.rows_rejected == 2
    assert rows(con, "SELECT count(*) FROM raw.activities") == [(0,)]
    assert rows(con, "SELECT count(*) FROM raw.rejects") == [(2,)]


def test_symlinks_and_subfolders_in_landing_are_ignored(tmp_path, con):
    outside = write(tmp_path / "outside" / "opportunities.csv", OPPS)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "linked.csv").symlink_to(outside)
    write(landing / "sub" / "opportunities.csv", OPPS)
    [outcome] = load_landing(con, landing, SETTINGS)
    # the link is reported, never followed; the sub-folder is not the landing folder
    assert (outcome.file_name, outcome.status) == ("linked.csv", "set_aside")
    assert "symbolic link" in outcome.message
    assert rows(con, "SELECT count(*) FROM raw.opportunities") == [(0,)]


# Times as exports write them: the plain shapes read by their exact format, and the others
# (Chinese dates, slashes, offsets, epoch milliseconds, Excel serial days, fractions) by
# the general reading.
TIME_TEXTS = [
    "2025-03-05 14:20:00",
    "2025-03-05 14:20",
    "2025-03-05",
    "2025-3-5 8:05",
    "2025-3-5 8:05:09",
    " 2025-03-05 14:20:00 ",
    "2025年3月5日 14:20",
    "2025年3月5日",
    "2025/3/5 14:20",
    "2025/03/05",
    "2025-03-05T14:20:00",
    "2025-03-05 14:20:00.25",
    "2025-03-05T14:20:00.000+0000",
    "2025-03-05T14:20:00.000-0330",
    "2025-03-05T14:20:00+08:00",
    "2025-03-05T14:20:00.123456+08:00",
    "2025-03-05 14:20:00+08:00",
    "2025-03-05 14:20Z",
    "2025-03-05 14:20:00 -05:00",
    "2025-03-05 14:20:00 +0800",  # Ruby's Time#to_s
    "2025-03-05 14:20:00 -0500 EST",  # Go's time.Time
    "2025-03-05 14:20:00-05",
    "2025-03-05 14:20:00 UTC",
    "2025-03-05T14:20:00 Z",
    "2025-03-05 14:20:00 Asia/Shanghai",
    "2025-03-05 14:20:00.5 America/Argentina/Buenos_Aires",
    "2025-03-05 14:20:00 Mars/Olympus",
    "1741184400000",
    "45721",
    "45721.5",
    "2025-03-09 02:30:00",  # a wall time that does not exist in New York (spring forward)
    "2025-11-02 01:30",  # one that happens twice there (fall back)
    "2025-02-30 10:00:00",
    "2025-03-05 24:00:00",
    "20250305",
    "not a date",
    "",
    "   ",
    None,
]


def read_times(texts, tz: str, *readings: str) -> list[tuple]:
    """Each text (column c0) with what each SQL reading of it gives, in business time zone
    `tz` (the session in UTC, so instants come back comparable)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE src (c0 VARCHAR)")
    con.executemany("INSERT INTO src VALUES (?)", [[t] for t in texts])
    return con.execute(f"SELECT c0, {', '.join(readings)} FROM src", {"tz": tz}).fetchall()


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York", "UTC"])
def test_plain_times_read_first_give_what_the_general_reading_gives(tz):
    """The exact-format reading of plain times is only a shortcut: every text reads as the
    general reading alone would read it, in any time zone, blank and unreadable included."""
    from ingestion.values import general_reading_sql, timestamp_sql

    rows = read_times(TIME_TEXTS, tz, timestamp_sql("c0"), general_reading_sql("c0"))
    assert [(text, now) for text, now, _ in rows] == [(text, then) for text, _, then in rows]


def test_a_cell_is_trimmed_once_and_read_as_its_text_with_spaces_says():
    """Each kind of column read from a cell as the mapping hands it to the parser (already
    trimmed, blank as NULL): the value worked out here from the text inside the spaces, and
    SQL that does not trim what is already trimmed (at 12 million cells a second trim cost
    a second of the load)."""
    from decimal import Decimal

    from ingestion.schema import AMOUNT, BOOLEAN, DATE, INTEGER, PERCENT, TIMESTAMP
    from ingestion.values import blank_to_null, parse_sql

    cells = {
        TIMESTAMP: ("  2025-03-05 14:20  ", datetime(2025, 3, 5, 6, 20, tzinfo=UTC)),
        DATE: (" 2025/3/5 ", date(2025, 3, 5)),
        AMOUNT: ("  ¥8,000.50 ", Decimal("8000.50")),
        INTEGER: (" 1,250 ", 1250),
        BOOLEAN: ("  是 ", True),
        PERCENT: (" 30 % ", Decimal("30.00")),
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for kind, (text, expected) in cells.items():
        sql = parse_sql(kind, blank_to_null("c0"))
        assert "trim(nullif(trim(" not in sql, kind
        in_shanghai = sql.replace("$tz", "'Asia/Shanghai'")
        for cell, value in [(text, expected), ("   ", None), ("", None)]:
            got = con.execute(
                f"SELECT {in_shanghai} FROM (SELECT CAST(? AS VARCHAR) AS c0)", [cell]
            )
            assert got.fetchone()[0] == value, (kind, cell)


def test_dates_read_as_written_whatever_the_shape():
    """A date column (an expected close date) from every shape an export writes it in, the
    dates worked out here: a time written with it gives the date as written, in UTC for an
    ISO time or epoch milliseconds (HubSpot's closedate through its API, rejected before)."""
    from ingestion.values import date_sql

    texts = {
        "2025-03-05": date(2025, 3, 5),
        "2025/3/5": date(2025, 3, 5),
        "2025年3月5日": date(2025, 3, 5),
        "2024-01-22T16:14:25.000+0000": date(2024, 1, 22),
        # 1,736,204,400 s = 2025-01-06 23:00 UTC (already the 7th in Berlin): the UTC date,
        # as the ISO text of the same instant gives it
        "1736204400000": date(2025, 1, 6),
        "2025-01-06T23:00:00.000Z": date(2025, 1, 6),
        "45721": date(2025, 3, 5),  # an Excel serial day
        "soon": None,
        "": None,
    }
    con = duckdb.connect()
    con.execute("CREATE TABLE src (c0 VARCHAR)")
    con.executemany("INSERT INTO src VALUES (?)", [[t] for t in texts])
    got = con.execute(f"SELECT c0, {date_sql('c0')} FROM src").fetchall()
    assert dict(got) == texts


def test_times_read_as_the_business_time_zone_says():
    """Figures worked out here, not by the parser: wall times in Shanghai are 8 hours ahead
    of UTC, an explicit offset wins, epoch milliseconds are an instant."""
    from ingestion.values import timestamp_sql

    texts = {
        "2025-03-05 14:20:00": datetime(2025, 3, 5, 6, 20, tzinfo=UTC),
        "2025-03-05 14:20": datetime(2025, 3, 5, 6, 20, tzinfo=UTC),
        "2025-03-05": datetime(2025, 3, 4, 16, 0, tzinfo=UTC),
        "2025年3月5日 14:20": datetime(2025, 3, 5, 6, 20, tzinfo=UTC),
        "2025/3/5 8:05": datetime(2025, 3, 5, 0, 5, tzinfo=UTC),
        "2025-03-05T14:20:00.000+0000": datetime(2025, 3, 5, 14, 20, tzinfo=UTC),
        "2025-03-05T14:20:00-05:00": datetime(2025, 3, 5, 19, 20, tzinfo=UTC),
        # a zone after the time, as other systems print it: never the business time zone's
        "2025-03-05 14:20:00 +0800": datetime(2025, 3, 5, 6, 20, tzinfo=UTC),
        "2025-03-05 14:20:00 -0500 EST": datetime(2025, 3, 5, 19, 20, tzinfo=UTC),
        "2025-03-05 14:20:00-05": datetime(2025, 3, 5, 19, 20, tzinfo=UTC),
        "2025-03-05 14:20:00 UTC": datetime(2025, 3, 5, 14, 20, tzinfo=UTC),
        "2025-03-05 14:20:00 GMT": datetime(2025, 3, 5, 14, 20, tzinfo=UTC),
        "2025-03-05 14:20:00 America/New_York": datetime(2025, 3, 5, 19, 20, tzinfo=UTC),
        "2025-03-05 14:20:00 Mars/Olympus": None,  # no such zone: unreadable, not a guess
        "1741184400000": datetime(2025, 3, 5, 14, 20, tzinfo=UTC),
        "45721.5": datetime(2025, 3, 5, 4, 0, tzinfo=UTC),
        "2025-02-30 10:00:00": None,
        "": None,
    }
    got = read_times(list(texts), "Asia/Shanghai", timestamp_sql("c0"))
    assert dict(got) == texts


def test_a_comma_groups_thousands_or_the_value_is_rejected(tmp_path):
    """A comma in an amount or a count is read only as a thousands separator. A decimal
    comma (12,5; 1.234,56; 8 000,50, as European exports write them) was read as one, and
    loaded a number ten to a thousand times too big without a word; such a row is now
    rejected, naming the column and the value. The numbers here are worked out by hand."""
    from decimal import Decimal

    from ingestion.schema import AMOUNT, INTEGER
    from ingestion.values import blank_to_null, parse_sql

    expected = {
        AMOUNT: {
            "8,000.50": Decimal("8000.50"),
            "¥8,000": Decimal("8000.00"),
            "-1,234,567": Decimal("-1234567.00"),
            "1,200万": Decimal("12000000.00"),
            "12.5万": Decimal("125000.00"),
            "8000元": Decimal("8000.00"),
            "12,500": Decimal("12500.00"),
            "1，234": Decimal("1234.00"),  # a full-width comma
            "12,5": None,
            "1.234,56": None,
            "8 000,50": None,
            "1,2345": None,
            "1,234,56": None,
            ",500": None,
        },
        INTEGER: {"1,250": 1250, "1250": 1250, "1,5": None, "12,50": None},
    }
    con = duckdb.connect()
    for kind, cases in expected.items():
        sql = parse_sql(kind, blank_to_null("c0"))
        for text, value in cases.items():
            got = con.execute(f"SELECT {sql} FROM (SELECT CAST(? AS VARCHAR) AS c0)", [text])
            assert got.fetchone()[0] == value, (kind, text)
    # in a load: the row is rejected with its column and value, the good row loads
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "opportunities.csv").write_text(
        "opportunity_id,opportunity_name,amount,created_at,stage,status\n"
        'E-1,euro,"1.234,56",2025-05-01 10:00,初步接触,进行中\n'
        'G-1,good,"1,234.56",2025-05-01 10:00,初步接触,进行中\n',
        encoding="utf-8",
    )
    load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
    assert rows(con, "SELECT opportunity_id, amount FROM raw.opportunities") == [
        ("G-1", Decimal("1234.56"))
    ]
    [(column, value, reason)] = rows(con, "SELECT column_name, value, reason FROM raw.rejects")
    assert (column, value) == ("amount", "1.234,56") and "amount" in reason


def test_dates_written_with_dots_read_year_or_day_first():
    """Dates with dots, as German, Russian and other European exports write them day first
    (05.03.2025 14:20) and some Chinese and Korean tools year first (2025.3.5): read as
    written (they were rejected), the time as a wall time in the business time zone. No
    locale writes dots month first, so 05.13.2025 stays unreadable, as does day 32."""
    from zoneinfo import ZoneInfo

    from ingestion.schema import DATE, TIMESTAMP
    from ingestion.values import blank_to_null, parse_sql

    shanghai = ZoneInfo("Asia/Shanghai")
    expected = {
        DATE: {
            "05.03.2025": date(2025, 3, 5),
            "5.3.2025": date(2025, 3, 5),
            "2025.03.05": date(2025, 3, 5),
            "2025.3.5": date(2025, 3, 5),
            "31.12.2024 23:59": date(2024, 12, 31),
            "05.13.2025": None,
            "32.03.2025": None,
        },
        TIMESTAMP: {
            "05.03.2025 14:20": datetime(2025, 3, 5, 14, 20, tzinfo=shanghai),
            "05.03.2025 14:20:30": datetime(2025, 3, 5, 14, 20, 30, tzinfo=shanghai),
            "2025.3.5 09:05": datetime(2025, 3, 5, 9, 5, tzinfo=shanghai),
            "05.13.2025 14:20": None,
            # not dates with dots: an Excel serial day and fractional seconds stay as they were
            "45721.5": datetime(2025, 3, 5, 12, 0, tzinfo=shanghai),
            "2025-03-05 14:20:00.250": datetime(2025, 3, 5, 14, 20, 0, 250000, tzinfo=shanghai),
        },
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for kind, cases in expected.items():
        sql = parse_sql(kind, blank_to_null("c0")).replace("$tz", "'Asia/Shanghai'")
        for text, value in cases.items():
            got = con.execute(f"SELECT {sql} FROM (SELECT CAST(? AS VARCHAR) AS c0)", [text])
            assert got.fetchone()[0] == value, (kind, text)


def test_empty_rows_are_skipped_and_rejects_keep_the_spreadsheets_row_numbers(tmp_path):
    """An empty row inside a sheet, and the `,,,,` lines Excel leaves in a CSV, are neither
    loaded nor rejected (a `,,,,` line was a reject, "missing required value"), and a
    reject after them names the row the spreadsheet shows (the sheet's was one too early).
    The row numbers are counted here by hand: header = row 1."""
    from openpyxl import Workbook

    header = ["商机编号", "商机名称", "预计成交金额", "创建时间"]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "商机"
    for row in [
        header,
        [],  # row 2: empty, right after the header
        ["S1", "华信ERP", "12.5万", "2025-03-01 09:30"],  # row 3
        [],  # row 4
        ["S2", "恒达", "很多", "2025/3/2 14:00"],  # row 5: the bad amount
        ["S3", "远景", "8000", "2025/3/3 14:00"],  # row 6
        [],
        [],  # empty rows at the end
    ]:
        sheet.append(row)
    landing = tmp_path / "landing"
    landing.mkdir()
    workbook.save(landing / "商机_20250305.xlsx")
    (landing / "跟进_商机_20250305.csv").write_text(
        "商机编号,商机名称,预计成交金额,创建时间\n"
        "C1,甲,100,2025-03-01 09:30\n"  # row 2
        ",,,\n"  # row 3: empty cells only
        "C2,乙,很多,2025-03-02 09:30\n"  # row 4: the bad amount
        ",,,\n",
        encoding="utf-8",
    )
    con = duckdb.connect()
    outcomes = {
        o.file_name: o for o in load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
    }
    sheet_outcome = outcomes["商机_20250305.xlsx"]
    csv_outcome = outcomes["跟进_商机_20250305.csv"]
    assert (sheet_outcome.rows_read, sheet_outcome.rows_loaded, sheet_outcome.rows_rejected) == (
        3,
        2,
        1,
    )
    assert (csv_outcome.rows_read, csv_outcome.rows_loaded, csv_outcome.rows_rejected) == (2, 1, 1)
    assert rows(
        con, "SELECT DISTINCT file_name, row_number, value FROM raw.rejects ORDER BY 1, 2"
    ) == [("商机_20250305.xlsx", 5, "很多"), ("跟进_商机_20250305.csv", 4, "很多")]
    assert rows(
        con,
        "SELECT opportunity_id, _row_number FROM raw.opportunities ORDER BY 1",
    ) == [("C1", 2), ("S1", 3), ("S3", 6)]


def test_a_sheets_title_row_is_skipped_and_rows_keep_the_sheets_numbers(tmp_path):
    """A workbook as reports are exported: a title in the first cell (the report's name and
    export time), an empty row, then the header. The sheet was not recognised at all (its
    "header" was the title); now the title is skipped and a reject names the row the
    spreadsheet shows. A sheet whose every row holds one cell keeps its first as header."""
    from openpyxl import Workbook

    from ingestion.files import spreadsheet_units

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "商机"
    for row in [
        ["商机列表（导出时间：2025-03-05 10:00）"],  # row 1: the title
        [],  # row 2
        ["商机编号", "商机名称", "预计成交金额", "创建时间"],  # row 3: the header
        ["S1", "华信ERP", "12.5万", "2025-03-01 09:30"],  # row 4
        ["S2", "恒达", "很多", "2025/3/2 14:00"],  # row 5: the bad amount
    ]:
        sheet.append(row)
    single = workbook.create_sheet("ids")
    for row in [["id"], ["a"], ["b"]]:
        single.append(row)
    landing = tmp_path / "landing"
    landing.mkdir()
    workbook.save(landing / "商机_20250305.xlsx")
    units = spreadsheet_units(landing / "商机_20250305.xlsx", tmp_path)
    assert [(u.sheet, u.headers, u.header_row) for u in units] == [
        ("商机", ["商机编号", "商机名称", "预计成交金额", "创建时间"], 3),
        ("ids", ["id"], 1),
    ]
    con = duckdb.connect()
    load_landing(con, landing, LoadSettings(as_of=date(2025, 6, 30)))
    assert rows(con, "SELECT opportunity_id, _row_number FROM raw.opportunities") == [("S1", 4)]
    assert rows(con, "SELECT DISTINCT row_number, value FROM raw.rejects") == [(5, "很多")]
