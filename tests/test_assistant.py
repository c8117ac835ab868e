"""`oppwh mcp`: an assistant's read-only door, driven by the MCP SDK's own stdio client, as an
assistant would: list the marts, describe one, query it, and be refused anything but one
reading statement."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import query as sql

pytestmark = pytest.mark.e2e


async def ask(data: Path, calls: list[tuple[str, dict]]) -> tuple[list[str], list]:
    """Start `oppwh mcp` as its own process, list its tools and make the calls in turn."""
    server = StdioServerParameters(
        command=str(Path(sys.executable).parent / "oppwh"),
        args=["mcp", "--data-dir", str(data)],
        env={**os.environ},
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = [t.name for t in (await session.list_tools()).tools]
        results = [await session.call_tool(name, arguments) for name, arguments in calls]
    return tools, results


def payload(result) -> object:
    """A tool's answer as the assistant reads it (structured, else its JSON text)."""
    if result.structuredContent is not None:
        content = result.structuredContent
        return content.get("result", content) if set(content) == {"result"} else content
    return json.loads(result.content[0].text)


def test_an_assistant_lists_describes_and_queries_the_marts_read_only(built_warehouse, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(built_warehouse / "serving.duckdb", data / "serving.duckdb")
    secret = tmp_path / "outside.txt"
    secret.write_text("not for assistants", encoding="utf-8")
    calls = [
        ("list_marts", {}),
        ("describe_mart", {"mart": "opportunities"}),
        ("query", {"sql": "select status, count(*) as n from marts.opportunities group by 1"}),
        ("query", {"sql": "select * from marts.follow_up_weekly"}),  # more rows than the cap
        ("query", {"sql": "delete from marts.opportunities"}),
        ("query", {"sql": f"select * from read_csv('{secret}')"}),
        ("describe_mart", {"mart": "x'; drop table marts.opportunities; --"}),
    ]
    tools, results = asyncio.run(ask(data, calls))
    assert set(tools) == {"list_marts", "describe_mart", "query"}
    marts, described, counts, capped, deleted, outside, injected = results

    listed = {m["mart"]: m for m in payload(marts)}
    assert {"opportunities", "action_items", "opportunity_priority"} <= set(listed)
    assert listed["opportunities"]["description"].startswith("商机 / One row per opportunity")

    columns = {c["column"]: c for c in payload(described)["columns"]}
    assert columns["created_at"]["type"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["opportunity_id"]["description"].startswith("商机编号 / ")

    db = data / "serving.duckdb"
    expected = dict(sql(db, "SELECT status, count(*) FROM marts.opportunities GROUP BY 1"))
    answer = payload(counts)
    assert answer["columns"] == ["status", "n"] and not answer["truncated"]
    assert dict(map(tuple, answer["rows"])) == expected

    [(weekly_rows,)] = sql(db, "SELECT count(*) FROM marts.follow_up_weekly")
    assert weekly_rows > 500
    cut = payload(capped)
    assert cut["row_count"] == 500 and len(cut["rows"]) == 500 and cut["truncated"]
    assert "first 500 rows" in cut["note"]

    for refused in (deleted, outside, injected):
        assert refused.isError, refused
    assert "only queries are allowed" in deleted.content[0].text
    assert "not for assistants" not in outside.content[0].text
    assert "no mart named" in injected.content[0].text
    assert sql(db, "SELECT count(*) FROM marts.opportunities")[0][0] == sum(expected.values())
