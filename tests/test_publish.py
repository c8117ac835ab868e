"""Publishing the serving copy a day at a time: a run writes again only the marts (and the
days of the history marts) that changed, and the copy it leaves equals one written from
scratch, row for row."""

from __future__ import annotations

from pathlib import Path

import duckdb

from serving.publish import publish_serving_copy
from tests.conftest import marts_fingerprint, query


def make_warehouse(path: Path) -> None:
    """A warehouse with the tables publishing reads: three marts (one a daily history, one
    with a phone number in a free-text column) and the load ledger and rejects."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE marts.opportunities AS SELECT 'D' || i AS opportunity_id, "
            "'Deal ' || i || ' call 13812345678' AS opportunity_name, i * 1000 AS amount "
            "FROM range(50) t(i)"
        )
        con.execute(
            "CREATE TABLE marts.cycle_time AS SELECT 'D' || i AS opportunity_id, "
            "i * 1.5 AS cycle_days FROM range(30) t(i)"
        )
        con.execute(
            "CREATE TABLE marts.opportunity_priority_history AS "
            "SELECT DATE '2025-06-01' + d::INTEGER AS scored_on, 'D' || i AS opportunity_id, "
            "['A', 'B', 'C', 'D'][1 + (i + d) % 4] AS grade, 'reason ' || i AS reasons "
            "FROM range(3) a(d), range(20) b(i)"
        )
        con.execute(
            "CREATE TABLE raw.load_ledger (load_id INTEGER, file_name VARCHAR, file_path VARCHAR)"
        )
        con.execute("INSERT INTO raw.load_ledger VALUES (1, 'a.csv', '/x/a.csv')")
        con.execute("CREATE TABLE raw.rejects (file_name VARCHAR, reason VARCHAR)")


def mark_published_copy(serving: Path) -> None:
    """Write a sentinel into the copy's rows (a copy no one else writes): a mart or a day
    that publishing leaves alone keeps it, one written again loses it."""
    with duckdb.connect(str(serving)) as con:
        con.execute("UPDATE marts.cycle_time SET cycle_days = -1 WHERE opportunity_id = 'D1'")
        con.execute("UPDATE marts.opportunities SET amount = -1 WHERE opportunity_id = 'D1'")
        con.execute("UPDATE marts.opportunity_priority_history SET grade = 'kept'")


def test_a_daily_publish_writes_only_what_changed_and_equals_a_fresh_one(tmp_path):
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    make_warehouse(warehouse)
    first = publish_serving_copy(warehouse, serving, "2025-06-03")
    assert first == {"cycle_time": 30, "opportunities": 50, "opportunity_priority_history": 60}
    mark_published_copy(serving)

    # The next day: one deal's amount moved, a new day of grades (06-04), 06-02 graded again
    # with other grades, a new mart; the cycle_time mart and the other days unchanged.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE marts.opportunities SET amount = 7 WHERE opportunity_id = 'D3'")
        con.execute("DELETE FROM marts.opportunity_priority_history WHERE scored_on = '2025-06-02'")
        con.execute(
            "INSERT INTO marts.opportunity_priority_history SELECT DATE '2025-06-02' + 2 * d::INTEGER, "
            "'D' || i, 'A', 'regraded ' || i FROM range(2) a(d), range(25) b(i)"
        )
        con.execute("CREATE TABLE marts.loss_reasons AS SELECT 'D9' AS opportunity_id")
    second = publish_serving_copy(warehouse, serving, "2025-06-04")
    assert second["opportunity_priority_history"] == 20 + 25 + 20 + 25  # 06-01 to 06-04
    assert second["loss_reasons"] == 1

    # Left alone: the unchanged mart and the history's unchanged day keep the sentinel.
    assert query(
        serving, "SELECT cycle_days FROM marts.cycle_time WHERE opportunity_id = 'D1'"
    ) == [(-1,)]
    kept_days = query(
        serving,
        "SELECT scored_on::VARCHAR, count(*) FROM marts.opportunity_priority_history "
        "WHERE grade = 'kept' GROUP BY 1",
    )
    assert sorted(kept_days) == [("2025-06-01", 20), ("2025-06-03", 20)]
    # Written again: the changed mart (the sentinel gone, the new amount there) and the
    # changed days, with personal data masked as in any copy.
    assert query(
        serving, "SELECT opportunity_id, amount FROM marts.opportunities WHERE amount IN (-1, 7)"
    ) == [("D3", 7)]
    [(name,)] = query(
        serving, "SELECT opportunity_name FROM marts.opportunities WHERE opportunity_id = 'D1'"
    )
    assert name == "Deal 1 call 138****5678"

    # Apart from the sentinel's rows, the copy equals one written from scratch.
    fresh = tmp_path / "fresh.duckdb"
    publish_serving_copy(warehouse, fresh, "2025-06-04", reuse=False)
    with duckdb.connect(str(fresh)) as con:
        con.execute("UPDATE marts.cycle_time SET cycle_days = -1 WHERE opportunity_id = 'D1'")
        con.execute(
            "UPDATE marts.opportunity_priority_history SET grade = 'kept' "
            "WHERE scored_on IN ('2025-06-01', '2025-06-03')"
        )
    assert marts_fingerprint(serving) == marts_fingerprint(fresh)

    # A rerun for the day regrades it, the same deals: that day is written again (a day
    # other than the run's own is known by its row count: only scoring writes the history,
    # the day it scores).
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "UPDATE marts.opportunity_priority_history SET grade = 'B' WHERE scored_on = '2025-06-04'"
        )
    publish_serving_copy(warehouse, serving, "2025-06-04")
    assert query(
        serving,
        "SELECT grade, count(*) FROM marts.opportunity_priority_history "
        "WHERE scored_on = '2025-06-04' GROUP BY 1",
    ) == [("B", 25)]

    # A mart dropped from the warehouse and a column's type changed: the copy follows.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE marts.loss_reasons")
        con.execute("ALTER TABLE marts.opportunity_priority_history ALTER scored_on TYPE VARCHAR")
    third = publish_serving_copy(warehouse, serving, "2025-06-05")
    assert "loss_reasons" not in third
    assert query(
        serving,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'opportunity_priority_history' AND column_name = 'scored_on'",
    ) == [("VARCHAR",)]
    assert query(
        serving, "SELECT count(*) FROM marts.opportunity_priority_history WHERE grade = 'kept'"
    ) == [(0,)]


def test_a_copy_that_is_mostly_free_space_is_written_anew(tmp_path):
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    make_warehouse(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE TABLE marts.big AS SELECT i, repeat('x', 200) || i AS note FROM range(300000) t(i)"
        )
    publish_serving_copy(warehouse, serving, "2025-06-03")
    full_size = serving.stat().st_size
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE marts.big")
    publish_serving_copy(warehouse, serving, "2025-06-04")  # the copy: big dropped, space free
    publish_serving_copy(warehouse, serving, "2025-06-05")  # mostly free: written anew
    assert serving.stat().st_size < full_size / 4
    assert query(serving, "SELECT count(*) FROM marts.opportunities") == [(50,)]


def test_the_lifecycle_s_open_visits_are_published_apart_from_the_visits_that_stay(tmp_path):
    """The lifecycle's open visits run to the end of the as-of day, so they change every
    day; the visits the deals have left (most of them) are written again only when they
    change."""
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    make_warehouse(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE TABLE marts.opportunity_lifecycle AS SELECT 'D' || i AS opportunity_id, "
            "v AS visit_number, "
            "CASE WHEN v < 3 THEN TIMESTAMP '2025-05-01' + INTERVAL (v) DAY END AS exited_at, "
            "v = 3 AND i % 2 = 0 AS is_closing_stage, "
            "CASE WHEN v = 3 AND i % 2 = 0 THEN NULL ELSE 10.0 * v END AS days_in_stage "
            "FROM range(10) a(i), range(1, 4) b(v)"
        )
    publish_serving_copy(warehouse, serving, "2025-06-03")
    with duckdb.connect(str(serving)) as con:  # a sentinel in a visit left and in an open one
        con.execute(
            "UPDATE marts.opportunity_lifecycle SET days_in_stage = -1 "
            "WHERE opportunity_id IN ('D2', 'D1') AND visit_number IN (1, 3)"
        )

    # The next day: the open visits (deals D1, D3, ...: visit 3, not closing) run a day more.
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "UPDATE marts.opportunity_lifecycle SET days_in_stage = days_in_stage + 1 "
            "WHERE exited_at IS NULL AND NOT is_closing_stage"
        )
    publish_serving_copy(warehouse, serving, "2025-06-04")
    lifecycle = (
        "SELECT opportunity_id, visit_number, days_in_stage FROM marts.opportunity_lifecycle"
    )
    got = dict(((d, v), days) for d, v, days in query(serving, lifecycle))
    assert got[("D2", 1)] == got[("D1", 1)] == -1  # left alone
    assert got[("D2", 3)] == -1  # closing: not open, left alone
    assert got[("D1", 3)] == got[("D3", 3)] == 31  # open: written again
    assert len(got) == 30

    # A visit left changes (a stage re-dated): the part that stays is written again.
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "UPDATE marts.opportunity_lifecycle SET days_in_stage = 12 "
            "WHERE opportunity_id = 'D5' AND visit_number = 1"
        )
    publish_serving_copy(warehouse, serving, "2025-06-05")
    assert query(serving, f"{lifecycle} WHERE days_in_stage = -1") == []
    fresh = tmp_path / "fresh.duckdb"
    publish_serving_copy(warehouse, fresh, "2025-06-05", reuse=False)
    assert marts_fingerprint(serving) == marts_fingerprint(fresh)


def test_a_mart_of_one_row_per_deal_is_brought_up_to_date_column_by_column(tmp_path):
    """opportunities' as-of figures move every row each day: while its deals are the same,
    the copy sets only the columns that changed and leaves the others as they were; when
    deals come or go (or a row has no key) it is written whole. Either way the copy equals
    one written from scratch."""
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    make_warehouse(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE OR REPLACE TABLE marts.opportunities AS SELECT "
            "CASE WHEN i < 3 THEN 'hubspot' ELSE 'salesforce' END AS source_system, "
            "'D' || (i % 3) AS opportunity_id, 'Deal ' || i || ' call 13812345678' "
            "AS opportunity_name, i * 1000 AS amount, 10.0 + i AS age_days FROM range(6) t(i)"
        )
    publish_serving_copy(warehouse, serving, "2025-06-03")

    def sentinel(path: Path) -> None:  # in a column that will not change
        with duckdb.connect(str(path)) as con:
            con.execute("UPDATE marts.opportunities SET amount = -1 WHERE opportunity_id = 'D1'")

    def fresh_copy(day: str) -> Path:
        fresh = tmp_path / f"fresh-{day}.duckdb"
        publish_serving_copy(warehouse, fresh, day, reuse=False)
        return fresh

    sentinel(serving)
    # The next day: every deal a day older, (hubspot, D2) one more touch in its name.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE marts.opportunities SET age_days = age_days + 1")
        con.execute(
            "UPDATE marts.opportunities SET opportunity_name = 'Deal 2 mail a@b.cn' "
            "WHERE source_system = 'hubspot' AND opportunity_id = 'D2'"
        )
    publish_serving_copy(warehouse, serving, "2025-06-04")
    rows = query(
        serving,
        "SELECT source_system, opportunity_id, opportunity_name, amount, age_days "
        "FROM marts.opportunities ORDER BY 1, 2",
    )
    assert rows == [
        ("hubspot", "D0", "Deal 0 call 138****5678", 0, 11.0),
        ("hubspot", "D1", "Deal 1 call 138****5678", -1, 12.0),  # amount left alone
        ("hubspot", "D2", "Deal 2 mail ***@b.cn", 2000, 13.0),  # masked as ever
        ("salesforce", "D0", "Deal 3 call 138****5678", 3000, 14.0),
        ("salesforce", "D1", "Deal 4 call 138****5678", -1, 15.0),
        ("salesforce", "D2", "Deal 5 call 138****5678", 5000, 16.0),
    ]
    fresh = fresh_copy("2025-06-04")
    sentinel(fresh)
    assert marts_fingerprint(serving) == marts_fingerprint(fresh)

    # A deal gone and a new one: written whole (the sentinel gone), equal to a fresh copy.
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "DELETE FROM marts.opportunities "
            "WHERE source_system = 'salesforce' AND opportunity_id = 'D2'"
        )
        con.execute("INSERT INTO marts.opportunities VALUES ('hubspot', 'D7', 'Deal 7', 7, 1.0)")
    publish_serving_copy(warehouse, serving, "2025-06-05")
    assert marts_fingerprint(serving) == marts_fingerprint(fresh_copy("2025-06-05"))

    # A day on which the deals stay but a row has no key: rows cannot be matched, written
    # whole.
    sentinel(serving)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE marts.opportunities SET opportunity_id = NULL WHERE amount = 7")
    publish_serving_copy(warehouse, serving, "2025-06-06")
    assert query(serving, "SELECT count(*) FROM marts.opportunities WHERE amount = -1") == [(0,)]
    assert marts_fingerprint(serving) == marts_fingerprint(fresh_copy("2025-06-06"))


def test_masking_finds_every_address_and_number_and_leaves_other_text_as_it_was():
    """Every e-mail address and phone number is masked, wherever in the text and on
    whatever line; text without one (ten or twelve digits, a '+' before a space, the
    grades' own reasons) comes out as it went in; the same for the long texts checked
    first (the grades' reasons: serving.publish.CHECKED_FIRST)."""
    from serving.publish import CHECKED_FIRST, masked

    cases = [
        ("call 13812345678 today", "call 138****5678 today"),
        ("13812345678", "138****5678"),
        (
            "line one\nmail li.wei@example.com.cn\nline three",
            "line one\nmail ***@example.com.cn\nline three",
        ),
        ("Kontakt: +49 30 1234 5678, Büro", "Kontakt: +***, Büro"),
        ("tel +1-212-555-0199 or a@b.io", "tel +*** or ***@b.io"),
        (
            "后期阶段（商务谈判）/ late stage; 近30天跟进12次",
            "后期阶段（商务谈判）/ late stage; 近30天跟进12次",
        ),
        ("order 1381234567 (ten digits), 2 + 3 = 5", "order 1381234567 (ten digits), 2 + 3 = 5"),
        ("twelve 138123456789 digits", "twelve 138123456789 digits"),  # not a mobile number
        ("", ""),
        (None, None),
    ]
    assert "reasons" in CHECKED_FIRST and "CASE WHEN" in masked("reasons")
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (i INTEGER, note VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(text for text, _ in cases)))
        con.execute("ALTER TABLE t ADD COLUMN reasons VARCHAR")
        con.execute("UPDATE t SET reasons = note")
        got = con.execute(f"SELECT {masked('note')}, {masked('reasons')} FROM t ORDER BY i")
        got = got.fetchall()
    assert [g for g, _ in got] == [expected for _, expected in cases]
    assert [g for _, g in got] == [expected for _, expected in cases]


def test_a_copy_that_fails_leaves_the_last_copy_as_it_was(tmp_path, monkeypatch):
    """A publish whose copy of the last serving file fails (a full disk) fails with that
    error, and readers keep the last copy, whole; the next publish clears the half copy
    away."""
    import pytest

    import serving.publish as publish

    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    make_warehouse(warehouse)
    publish_serving_copy(warehouse, serving, "2025-06-03")
    before = marts_fingerprint(serving)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE marts.opportunities SET amount = 7 WHERE opportunity_id = 'D3'")

    def full_disk(source, target):
        Path(target).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.shutil, "copyfile", full_disk)
    with pytest.raises(OSError, match="No space left"):
        publish_serving_copy(warehouse, serving, "2025-06-04")
    assert marts_fingerprint(serving) == before
    monkeypatch.undo()
    publish_serving_copy(warehouse, serving, "2025-06-04")  # the half copy is cleared away
    assert query(serving, "SELECT amount FROM marts.opportunities WHERE opportunity_id = 'D3'") == [
        (7,)
    ]
    assert not list(tmp_path.glob(".serving.duckdb.*.tmp"))
