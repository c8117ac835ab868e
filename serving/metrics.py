"""The governed metrics (dbt semantic layer, `models/marts/_semantic_models.yml`), answered by
MetricFlow from the serving copy: `oppwh metrics list | query`.

MetricFlow writes the SQL; it runs here on an in-memory DuckDB that has the serving copy
attached read-only under the warehouse's catalog name (the semantic models name
`warehouse.marts.<mart>`), with external access off, in the business time zone. So every
tool that asks for `win_rate` gets the same definition, and none of them can write.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from metricflow.data_table.mf_table import MetricFlowDataTable
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow.protocols.sql_client import SqlEngine
from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
from metricflow_semantics.model.dbt_manifest_parser import (
    parse_manifest_from_dbt_generated_manifest,
)
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

from warehouse.database import connect
from warehouse.dbt_cli import DBT_PROJECT_DIR
from warehouse.layout import WAREHOUSE_FILE

SEMANTIC_MANIFEST = DBT_PROJECT_DIR / "target" / "semantic_manifest.json"
# The catalog the semantic models' relations name (the warehouse file's own name).
CATALOG = Path(WAREHOUSE_FILE).stem


class MetricsError(ValueError):
    """A metric query MetricFlow cannot answer; the message says why."""


class ServingSqlClient:
    """MetricFlow's SqlClient on a read-only, locked-down DuckDB over the serving copy."""

    def __init__(self, serving: Path, timezone: str):
        self._con = connect(None, timezone=timezone)
        self._con.execute(f"ATTACH ? AS {CATALOG} (READ_ONLY)", [str(serving)])
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._renderer = DuckDbSqlPlanRenderer()

    @property
    def sql_engine_type(self) -> SqlEngine:
        return SqlEngine.DUCKDB

    @property
    def sql_plan_renderer(self) -> DuckDbSqlPlanRenderer:
        return self._renderer

    def query(self, stmt: str, sql_bind_parameter_set=None) -> MetricFlowDataTable:
        params = dict(sql_bind_parameter_set.param_dict) if sql_bind_parameter_set else {}
        cursor = self._con.execute(stmt, params or None)
        columns = [d[0] for d in cursor.description]
        return MetricFlowDataTable.create_from_rows(columns, cursor.fetchall())

    def execute(self, stmt: str, sql_bind_parameter_set=None) -> None:
        raise MetricsError("the metrics only read")

    def dry_run(self, stmt: str, sql_bind_parameter_set=None) -> None:
        self._con.execute(f"EXPLAIN {stmt}")

    def close(self) -> None:
        self._con.close()

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"${bind_parameter_key}"


@dataclass(frozen=True)
class MetricInfo:
    """A metric as `oppwh metrics list` shows it: its name, label and dimensions."""

    name: str
    label: str
    dimensions: tuple[str, ...]


@functools.cache
def _semantic_lookup(path: Path, modified_ns: int) -> SemanticManifestLookup:
    """The parsed semantic manifest, once per process and version of the file (parsing and
    indexing it is most of a metric query's time)."""
    text = path.read_text(encoding="utf-8")
    return SemanticManifestLookup(
        parse_manifest_from_dbt_generated_manifest(manifest_json_string=text)
    )


@contextlib.contextmanager
def engine(serving: Path, timezone: str) -> Iterator[MetricFlowEngine]:
    """MetricFlow on the serving copy; its connection closed after."""
    lookup = _semantic_lookup(SEMANTIC_MANIFEST, SEMANTIC_MANIFEST.stat().st_mtime_ns)
    client = ServingSqlClient(serving, timezone)
    try:
        yield MetricFlowEngine(lookup, client)
    finally:
        client.close()


def list_metrics(serving: Path, timezone: str) -> list[MetricInfo]:
    with engine(serving, timezone) as mf:
        metrics = mf.list_metrics()
    return [
        MetricInfo(m.name, m.label or m.name, tuple(sorted({d.dunder_name for d in m.dimensions})))
        for m in metrics
    ]


def query_metrics(
    serving: Path,
    timezone: str,
    metrics: list[str],
    group_by: list[str] | None = None,
    where: list[str] | None = None,
) -> tuple[list[str], list[tuple]]:
    """The metrics by the dimensions asked for: column names and rows."""
    request = MetricFlowQueryRequest.create(
        metric_names=metrics,
        group_by_names=group_by or None,
        where_constraints=where or None,
        order_by_names=group_by or None,
    )
    try:
        with engine(serving, timezone) as mf:
            result = mf.query(request)
    except Exception as exc:  # MetricFlow has no common base for its errors (unknown metric ...)
        raise MetricsError(str(exc).strip().splitlines()[0]) from exc
    table = result.result_df
    return list(table.column_names), [tuple(row) for row in table.rows]
