"""Table and column comments in DuckDB, so a BI tool or notebook that lists the marts also
reads what each column means: `中文 / English`, the Chinese name from warehouse/labels.yml and
the English description from the dbt YAML (as dbt rendered it into its manifest, shared
`{% docs %}` blocks included). Timestamps say their time zone.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import duckdb

from warehouse.database import Database, transaction
from warehouse.dbt_cli import DBT_PROJECT_DIR
from warehouse.display import labels

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
TIMESTAMP_NOTE = (
    "（带时区的时间戳；业务时区 {tz}）",
    " (timestamp with time zone; read it in the business time zone {tz})",
)


def english_descriptions(manifest: Path = MANIFEST) -> dict[str, tuple[str, dict[str, str]]]:
    """Per mart: its description and its columns' descriptions, from dbt's manifest (the
    dbt models of schema marts, and the tables scoring and reminders write, declared as
    sources). Read once per version of the manifest (a run comments two files)."""
    return _descriptions(manifest, manifest.stat().st_mtime_ns)


@cache
def _descriptions(manifest: Path, modified_ns: int) -> dict[str, tuple[str, dict[str, str]]]:
    data = json.loads(manifest.read_text(encoding="utf-8"))
    nodes = [n for n in data["nodes"].values() if n["resource_type"] == "model"]
    nodes += list(data["sources"].values())
    return {
        n["name"]: (
            " ".join(n.get("description", "").split()),
            {c: " ".join(v.get("description", "").split()) for c, v in n["columns"].items()},
        )
        for n in nodes
        if n.get("schema") == "marts"
    }


def bilingual(zh: str | None, en: str, is_timestamp: bool = False, timezone: str = "") -> str:
    """`中文 / English`, with the time zone of a timestamp."""
    if is_timestamp:
        zh = f"{zh or ''}{TIMESTAMP_NOTE[0].format(tz=timezone)}"
        en = f"{en}{TIMESTAMP_NOTE[1].format(tz=timezone)}"
    return f"{zh} / {en}" if zh else en


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_marts(con: duckdb.DuckDBPyConnection, catalog: str, timezone: str) -> int:
    """COMMENT ON every table and column of `catalog`.marts that the docs describe; the
    number of comments written."""
    tables_zh, columns_zh = labels()["tables"], labels()["columns"]
    docs = english_descriptions()
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'marts' ORDER BY table_name, ordinal_position",
        [catalog],
    ).fetchall()
    statements, seen = [], set()
    for table, column, data_type in columns:
        description, column_docs = docs.get(table, ("", {}))
        if table not in seen:
            seen.add(table)
            text = bilingual(tables_zh.get(table), description or table)
            statements.append(f'COMMENT ON TABLE {catalog}.marts."{table}" IS {_literal(text)}')
        text = bilingual(
            columns_zh.get(column),
            column_docs.get(column) or column,
            data_type.startswith("TIMESTAMP WITH TIME ZONE"),
            timezone,
        )
        statements.append(
            f'COMMENT ON COLUMN {catalog}.marts."{table}"."{column}" IS {_literal(text)}'
        )
    # One transaction: a commit per comment (~300 of them) cost ~0.2 s per file.
    with transaction(con):
        for statement in statements:
            con.execute(statement)
    return len(statements)


def comment_warehouse(db: Database, timezone: str) -> int:
    """The same comments on the warehouse's own marts (for tools pointed at it)."""
    with db.connect() as con:
        catalog = con.execute("SELECT current_database()").fetchone()[0]
        return comment_marts(con, catalog, timezone)
