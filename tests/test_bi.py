"""The serving copy as a BI tool sees it: opened the way Superset, Metabase-style tools and
notebooks do (SQLAlchemy with duckdb-engine, read-only), its marts listed with a comment on
every table and column in Chinese and English, plain column types, and a query held open
while `oppwh run` publishes the next build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import odd_typed_columns, query
from tests.next_day import oppwh

pytestmark = pytest.mark.e2e


def serving_engine(data: Path) -> sa.Engine:
    # The README's connection string
    url = f"duckdb:///{data / 'serving.duckdb'}?access_mode=read_only"
    return sa.create_engine(url)


def test_a_bi_tool_lists_the_marts_with_comments_in_both_languages(built_warehouse):
    # DuckDB refuses a second connection with other settings to a file this process holds
    # open: the expected list first, then the BI tool's engine, closed after.
    expected = {
        r[0]
        for r in query(
            built_warehouse / "serving.duckdb",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'",
        )
    }
    engine = serving_engine(built_warehouse)
    try:
        check_comments(sa.inspect(engine), expected)
    finally:
        engine.dispose()


def check_comments(inspector, expected: set[str]) -> None:
    marts = inspector.get_table_names(schema="marts")
    assert set(marts) == expected and {"opportunities", "action_items"} <= expected
    for table in marts:
        comment = inspector.get_table_comment(table, schema="marts")["text"]
        zh, _, en = comment.partition(" / ")
        assert zh and en and len(en) > 20, (table, comment)
        for column in inspector.get_columns(table, schema="marts"):
            zh, _, en = (column["comment"] or "").partition(" / ")
            assert zh and en, (table, column["name"], column["comment"])
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (table, column["name"])
            if isinstance(column["type"], sa.DateTime) and column["type"].timezone:
                assert "Asia/Shanghai" in en, (table, column["name"])
    [created] = [
        c
        for c in inspector.get_columns("opportunities", schema="marts")
        if c["name"] == "created_at"
    ]
    assert created["comment"].startswith("创建时间（带时区的时间戳；业务时区 Asia/Shanghai） / ")


def test_every_mart_column_has_a_plain_type(built_warehouse):
    assert odd_typed_columns(built_warehouse / "serving.duckdb") == []
    assert odd_typed_columns(built_warehouse / "warehouse.duckdb") == []


def test_a_bi_query_held_open_through_a_run_sees_the_new_build_after(
    built_warehouse, sample_landing, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(built_warehouse, data, ignore=shutil.ignore_patterns("logs", "exports"))
    engine = serving_engine(data)
    with engine.connect() as held:
        before = held.execute(sa.text("SELECT as_of FROM main.publication")).scalar_one()
        open_before = held.execute(
            sa.text("SELECT count(*) FROM marts.opportunities WHERE status = 'open'")
        ).scalar_one()
        # the run is its own process, as it is beside a BI tool
        run = oppwh(
            "run",
            "--data-dir",
            str(data),
            "--landing",
            str(sample_landing),
            "--as-of",
            "2025-07-20",
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        # the reader that held the copy open keeps reading the copy it opened
        still = held.execute(
            sa.text("SELECT count(*) FROM marts.opportunities WHERE status = 'open'")
        ).scalar_one()
        assert still == open_before
    engine.dispose()
    with serving_engine(data).connect() as fresh:
        after = fresh.execute(sa.text("SELECT as_of FROM main.publication")).scalar_one()
        comments = fresh.execute(
            sa.text("SELECT count(comment) FROM duckdb_columns() WHERE schema_name = 'marts'")
        ).scalar_one()
    assert str(before) == "2025-06-30" and str(after) == "2025-07-20" and comments > 200
