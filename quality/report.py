"""The quality report: every check of every run, kept in schema `quality`, read by people.

Three kinds of rows: contracts on each new export (Great Expectations, or SQL for very
large loads), dbt tests over the whole history, and the landing-folder freshness check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

from quality.contracts import BLOCK, CHECKS, WARN, check_by_name
from warehouse.safe_names import printable

CHECK_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS quality.check_results (
    run_id VARCHAR,
    as_of DATE,
    checked_at TIMESTAMPTZ,
    layer VARCHAR,          -- export (a new file's rows) | history (dbt test) | landing
    table_name VARCHAR,
    check_name VARCHAR,
    severity VARCHAR,       -- block | error | warn
    passed BOOLEAN,
    failing_rows BIGINT,
    sample_ids VARCHAR,     -- JSON list of up to 10 failing ids
    file_name VARCHAR,
    description VARCHAR,
    fix VARCHAR,
    engine VARCHAR
)"""

SEVERITY_RANK = {BLOCK: 0, "error": 1, WARN: 2}
DBT_FIXES = {
    "unique_combination": "上游导出有重复记录，检查该表的导出 / duplicate records upstream: check that export",
    "value_in_seed": "在对应的种子文件中加入该值（dbt_project/seeds/）/ add the value to the seed "
    "in dbt_project/seeds/",
    "stage_is_defined": "在落地目录放入阶段定义导出（stage_definitions）；未定义的阶段名见导出检查 / "
    "drop a stage_definitions export into landing; the undefined stage names are in the "
    "export check above (README: Your own stages)",
    "not_null": "在CRM中补全该字段 / fill in the field in the CRM",
    "accepted_values": "检查导出中的取值 / check the values in the export",
    "expression_is_true": "检查标记的记录（opportunities 的 is_* 列）/ look at the flagged records "
    "(the is_* columns of marts.opportunities)",
    "relationships": "检查引用的记录是否也已导出 / check the referenced records are exported too",
}


def ensure_quality_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    con.execute(CHECK_RESULTS_DDL)


def _insert(con, rows: list[tuple]) -> None:
    if rows:
        con.executemany(
            "INSERT INTO quality.check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def fix_naming(fix: str, values: tuple[str, ...]) -> str:
    """The check's fix with the values to act on named in it."""
    if not values:
        return fix
    return f"{fix} — {', '.join(values)}"


def record_export_checks(con, run_id: str, as_of: date, outcomes) -> int:
    """One row per contract per new file of this run (loaded or blocked), and one row for
    each contract no new file exercised, so every check has a row in every run."""
    now = datetime.now(UTC)
    exercised = {r.check.name for o in outcomes for r in o.checks}
    rows = [
        (
            run_id,
            as_of,
            now,
            "export",
            c.table,
            c.name,
            c.severity,
            True,
            0,
            "[]",
            None,
            f"{c.label} (no new export / 无新导出)",
            c.fix,
            "none",
        )
        for c in CHECKS
        if c.name not in exercised
    ]
    for outcome in outcomes:
        for r in outcome.checks:
            rows.append(
                (
                    run_id,
                    as_of,
                    now,
                    "export",
                    r.check.table,
                    r.check.name,
                    r.check.severity,
                    r.passed,
                    r.failing_rows,
                    json.dumps(list(r.sample_ids), ensure_ascii=False),
                    r.file_name,
                    r.check.label
                    + (f": {', '.join(r.unknown_values)}" if r.unknown_values else ""),
                    fix_naming(r.check.fix, r.unknown_values),
                    r.engine,
                )
            )
    _insert(con, rows)
    return len(rows)


def _dbt_test_row(result: dict, node: dict, run_id: str, as_of: date, now) -> tuple:
    status = result.get("status")
    config = node.get("config", {})
    severity = "warn" if str(config.get("severity", "error")).lower() == "warn" else "error"
    test_name = (node.get("test_metadata") or {}).get("name", "")
    model = next(
        (
            d.split(".")[-1]
            for d in node.get("depends_on", {}).get("nodes", [])
            if d.startswith(("model.", "seed."))
        ),
        None,
    )
    failures = result.get("failures") or 0
    passed = status == "pass"
    description = f"dbt test {node.get('name', result['unique_id'])}"
    if not passed and result.get("message"):
        description += f": {result['message']}"
    return (
        run_id,
        as_of,
        now,
        "history",
        model,
        node.get("name", result["unique_id"]),
        severity,
        passed,
        int(failures) if not passed else 0,
        "[]",
        None,
        description,
        DBT_FIXES.get(test_name, ""),
        "dbt",
    )


def record_dbt_results(con, run_id: str, as_of: date, run_results: dict, manifest: dict) -> int:
    """One row per dbt test of this run's `dbt build`."""
    now = datetime.now(UTC)
    nodes = manifest.get("nodes", {})
    rows = [
        _dbt_test_row(result, nodes.get(result["unique_id"], {}), run_id, as_of, now)
        for result in run_results.get("results", [])
        if result["unique_id"].startswith("test.")
    ]
    _insert(con, rows)
    return len(rows)


@dataclass(frozen=True)
class Freshness:
    days_since_new_export: int | None
    max_days: int

    @property
    def passed(self) -> bool:
        return (
            self.days_since_new_export is not None and self.days_since_new_export <= self.max_days
        )

    @property
    def finding(self) -> str:
        """What the check found, in both languages, for the run's output and the report
        alike: the days since the last new export, or that none ever loaded (a first run
        whose every file was rejected or set aside)."""
        days = self.days_since_new_export
        if days is None:
            return "尚未导入过任何导出 / no export has been loaded yet"
        return (
            f"最近一次新导出在{days}天前（上限{self.max_days}天）/ last new export {days} days ago "
            f"(limit {self.max_days})"
        )


def landing_freshness(con, as_of: date, max_days: int) -> Freshness:
    """Days since a new export last arrived (the latest export date of a loaded file)."""
    row = con.execute(
        "SELECT max(export_date) FROM raw.load_ledger WHERE status = 'loaded' AND export_date <= ?",
        [as_of],
    ).fetchone()
    days = (as_of - row[0]).days if row and row[0] else None
    return Freshness(days, max_days)


def record_freshness(con, run_id: str, as_of: date, freshness: Freshness) -> None:
    _insert(
        con,
        [
            (
                run_id,
                as_of,
                datetime.now(UTC),
                "landing",
                "load_ledger",
                "landing_freshness",
                WARN,
                freshness.passed,
                0 if freshness.passed else 1,
                "[]",
                None,
                freshness.finding,
                "检查CRM导出或同步任务是否仍在运行 / check the CRM export or sync job is still running",
                "sql",
            )
        ],
    )


def latest_run_id(con) -> str | None:
    row = con.execute(
        "SELECT run_id FROM quality.check_results ORDER BY checked_at DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def report_rows(con, run_id: str) -> list[tuple]:
    """The standing problems, worst first (blocking, errors, warnings): the latest result
    of every check, whichever run evaluated it last. A rerun with nothing new still shows
    what the last export got wrong; a check that passed since is not shown."""
    return con.execute(
        """
        SELECT severity, layer, table_name, check_name, failing_rows, sample_ids, file_name,
            description, fix, run_id = ? AS this_run
        FROM quality.check_results
        WHERE engine IS DISTINCT FROM 'none'  -- "no new export": nothing was evaluated
        QUALIFY row_number() OVER (
            PARTITION BY layer, coalesce(table_name, ''), check_name ORDER BY checked_at DESC
        ) = 1 AND NOT passed
        ORDER BY CASE severity WHEN 'block' THEN 0 WHEN 'error' THEN 1 ELSE 2 END,
            failing_rows DESC, table_name, check_name
        """,
        [run_id],
    ).fetchall()


# Below this overall data completeness the report never says "all passed".
COMPLETENESS_GOOD = 0.9
REJECT_LINES = 20


def rejects_by_reason(con, run_id: str) -> tuple[str, list[tuple]]:
    """Rejected rows grouped by file, column and reason: the run's loads when it loaded
    any, else the standing ones (every load still in the warehouse)."""
    scope = "this run / 本次运行"
    where = "WHERE load_id IN (SELECT load_id FROM raw.load_ledger WHERE run_id = ?)"
    params = [run_id]
    if not con.execute(f"SELECT count(*) FROM raw.rejects {where}", params).fetchone()[0]:
        scope, where, params = "all loads / 全部加载", "", []
    rows = con.execute(
        f"SELECT file_name, column_name, reason, count(DISTINCT row_number) AS n, "
        f"min(row_number) FROM raw.rejects {where} GROUP BY 1, 2, 3 "
        f"ORDER BY max(load_id) DESC, n DESC, 1, 2",
        params,
    ).fetchall()
    return scope, rows


def estimated_counts(con) -> list[tuple]:
    """Deals whose columns came from a mapping's defaults, per source and columns."""
    try:
        return con.execute(
            "SELECT source_system, estimated_columns, count(*) FROM marts.opportunities "
            "WHERE estimated_columns IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC"
        ).fetchall()
    except duckdb.CatalogException:
        return []


def completeness_by_owner(con) -> list[tuple]:
    """Fill rate of the fields the marts and scoring need, per owner, least complete first."""
    try:
        return con.execute(
            """
            SELECT coalesce(owner_name, owner_id, '(no owner / 无负责人)'), deals,
                fill_rate_amount, fill_rate_expected_close_date, fill_rate_industry,
                fill_rate_loss_reason, data_completeness
            FROM marts.owner_performance ORDER BY data_completeness, deals DESC
            """
        ).fetchall()
    except duckdb.CatalogException:
        return []


def _pct(value) -> str:
    return "  -  " if value is None else f"{value:5.0%}"


def render_report(con) -> str:
    """The latest run's report as text for a terminal."""
    run_id = latest_run_id(con)
    if run_id is None:
        return "No quality results yet: run `oppwh run` first. / 尚无数据质量结果，请先运行 oppwh run。"
    (as_of, total, failing) = con.execute(
        "SELECT max(as_of), count(*), count(*) FILTER (WHERE NOT passed) "
        "FROM quality.check_results WHERE run_id = ?",
        [run_id],
    ).fetchone()
    lines = [
        f"Data quality report / 数据质量报告 — run {run_id[:8]}, as of {as_of}",
        f"{total} checks this run, {failing} with problems / 本次共{total}项检查，{failing}项有问题",
        "Standing problems (the latest result of every check) / 当前存在的问题:",
        "",
    ]
    labels = {"block": "BLOCK 阻断", "error": "ERROR 错误", "warn": "WARN 警告"}
    standing = report_rows(con, run_id)
    for severity, layer, table, name, n, sample, file_name, description, fix, now in standing:
        check = check_by_name(name)
        where = f"{file_name} → raw.{table}" if file_name else f"{layer}: {table or '-'}"
        when = "" if now else "   (standing: from an earlier run / 早前运行的结果)"
        lines.append(f"[{labels.get(severity, severity)}] {description or name}{when}")
        lines.append(f"    where / 位置: {where}   check / 检查: {name}")
        ids = json.loads(sample or "[]")
        lines.append(
            f"    rows / 行数: {n}" + (f"   e.g. / 例如: {', '.join(ids[:5])}" if ids else "")
        )
        lines.append(f"    fix / 处理: {fix or (check.fix if check else '')}")
    owners = completeness_by_owner(con)
    overall = _overall_completeness(owners)
    if not standing and overall is not None and overall < COMPLETENESS_GOOD:
        lines.append(
            f"Every check passed, but data completeness is {overall:.0%} (below "
            f"{COMPLETENESS_GOOD:.0%}): see the table below / 检查均通过，但数据完整度仅 {overall:.0%}"
        )
    elif not standing:
        lines.append("All checks passed / 所有检查通过")
    problems = con.execute(
        "SELECT file_name, status, message FROM raw.load_ledger WHERE run_id = ? AND status IN "
        "('set_aside', 'failed', 'blocked', 'deferred', 'vanished') ORDER BY load_id",
        [run_id],
    ).fetchall()
    if problems:
        lines += ["", "Files not loaded this run / 本次未加载的文件:"]
        for file_name, status, message in problems:
            lines.append(f"  [{status}] {printable(file_name)}: {message}")
    scope, rejects = rejects_by_reason(con, run_id)
    if rejects:
        lines += ["", f"Rejected rows by column and reason ({scope}) / 被拒绝的行（按列和原因）:"]
        for file_name, column, reason, n, first in rejects[:REJECT_LINES]:
            lines.append(
                f"  {printable(file_name)} · {column}: {n} row(s), e.g. row {first} — {reason}"
            )
        if len(rejects) > REJECT_LINES:
            lines.append(f"  … and {len(rejects) - REJECT_LINES} more (raw.rejects)")
    estimated = estimated_counts(con)
    if estimated:
        lines += ["", "Values filled from mapping defaults / 由映射默认值填充:"]
        for source, columns, n in estimated:
            lines.append(f"  {source}: {n} deal(s) with {columns} estimated (defaults:)")
    if owners:
        lines += [
            "",
            "Data completeness by owner / 各负责人数据完整度 (amount, close date, industry, "
            "loss reason, overall):",
        ]
        for name, deals, amount, close, industry, reason, overall_ in owners:
            lines.append(
                f"  {name:<24} {deals:>6} deals  {_pct(amount)} {_pct(close)} "
                f"{_pct(industry)} {_pct(reason)}  = {_pct(overall_)}"
            )
    return "\n".join(lines)


def _overall_completeness(owners: list[tuple]) -> float | None:
    """Deal-weighted completeness over every owner (None when there are no deals)."""
    deals = sum(row[1] or 0 for row in owners)
    if not deals:
        return None
    return sum((row[1] or 0) * (row[6] or 0) for row in owners) / deals
