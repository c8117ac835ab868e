"""`oppwh inspect FILE`: what the warehouse would make of a file, without loading it.

The file goes through the real loader into a throw-away in-memory DuckDB, so what
inspect shows (format, mapping, parsed rows, rejects) is exactly what a run would do.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.errors import IngestionError
from ingestion.files import source_units
from ingestion.formats import detect_format
from ingestion.formats.base import Params, normalise_header, ref, resolve_output
from ingestion.load import FileOutcome, LoadSettings, ensure_raw_schema, load_file, outputs_for
from ingestion.schema import TABLES
from warehouse.database import connect


@dataclass
class UnitReport:
    name: str
    headers: list[str]
    outcome: FileOutcome | None = None
    format_label: str = ""
    mapping: list[tuple[str, str, str]] = field(default_factory=list)  # table, column, from
    unused: list[str] = field(default_factory=list)
    preview_columns: list[str] = field(default_factory=list)
    preview: list[tuple] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    problems_total: int = 0


PROBLEMS_SHOWN = 50


def shown_value(value) -> str:
    """A cell as the user should read it: a blank cell says so (never `None`)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "blank / 空"
    return repr(value)


def describe_mapping(headers: list[str], settings: LoadSettings, name: str):
    """(format label, [(table, canonical column, where it comes from)], unused headers)."""
    fmt = detect_format(headers, name, settings.formats, settings.user_formats)
    rows, used = [], set()
    all_refs = [ref(i) for i in range(len(headers))]
    for output in outputs_for(fmt):
        if output.table == "opportunity_snapshots" and fmt.current_state:
            continue  # the same columns again, dated: said in the label
        resolved = resolve_output(output, headers, Params(), all_refs)
        for column, got in resolved.columns.items():
            spec = output.fields[column]
            if spec.sql:
                origin = "derived: " + spec.sql
            elif got.raw_sql is None:
                origin = f"{got.shown} (or a hash of the row when blank)"
            else:
                origin = got.shown
            rows.append((output.table, column, origin))
            used.add(got.shown)
        for i, label in resolved.unpivot_headers:
            rows.append((output.table, f"stage={label}", headers[i]))
            used.add(headers[i])
    kind = (
        (
            "current-state, " + ("full" if fmt.full_export else "partial") + " export; "
            "each load is also a dated snapshot"
        )
        if fmt.current_state
        else "history export"
    )
    label = f"{fmt.label} [{fmt.name}] — source system '{fmt.source_system}', {kind}"
    unused = [
        h
        for h in headers
        if h not in used
        and not any(h in r[2] for r in rows)
        and normalise_header(h) != "source_system"  # a per-row source system, not extra
    ]
    if "source_system" in {normalise_header(h) for h in headers}:
        rows.append(
            (
                "(every table)",
                "source_system",
                f"source_system (per row; else '{fmt.source_system}')",
            )
        )
    return label, rows, unused


def inspect_file(path: Path, settings: LoadSettings, preview_rows: int = 5) -> list[UnitReport]:
    reports: list[UnitReport] = []
    with connect() as con, tempfile.TemporaryDirectory() as work:
        con.execute("SET TimeZone = ?", [settings.business_tz])
        ensure_raw_schema(con)
        try:
            units = source_units(path, Path(work))
        except IngestionError as exc:
            return [
                UnitReport(path.name, [], FileOutcome(path.name, "failed", message=exc.message))
            ]
        for unit in units:
            report = UnitReport(unit.display_name, unit.headers)
            with contextlib.suppress(IngestionError):  # the load below reports it
                report.format_label, report.mapping, report.unused = describe_mapping(
                    unit.headers, settings, unit.sheet or path.name
                )
            reports.append(report)
        outcomes = load_file(con, path, settings)
        for report, outcome in zip(reports, outcomes, strict=False):
            report.outcome = outcome
            if outcome.table:
                cols = TABLES[outcome.table].column_names
                report.preview_columns = cols
                report.preview = con.execute(
                    f"SELECT {', '.join(cols)} FROM raw.{outcome.table} "
                    "WHERE _file_name = ? ORDER BY _row_number LIMIT ?",
                    [report.name, preview_rows],
                ).fetchall()
            # once per cell and reason: a current-state export's row is also read into its
            # snapshot table, and was listed twice
            problems = (
                "SELECT DISTINCT row_number, column_name, value, reason FROM raw.rejects "
                "WHERE file_name = ?"
            )
            report.rejects = con.execute(
                f"{problems} ORDER BY row_number, column_name, reason LIMIT ?",
                [report.name, PROBLEMS_SHOWN],
            ).fetchall()
            report.problems_total = con.execute(
                f"SELECT count(*) FROM ({problems})", [report.name]
            ).fetchone()[0]
    return reports


def render(reports: list[UnitReport]) -> str:
    lines: list[str] = []
    for r in reports:
        lines.append(f"== {r.name}")
        lines.append(f"Headers / 表头 ({len(r.headers)}): {', '.join(r.headers[:40])}")
        if r.format_label:
            lines.append(f"Format / 格式: {r.format_label}")
            lines.append("Column mapping / 字段映射:")
            for table, column, origin in r.mapping:
                lines.append(f"  {table}.{column:<22} <- {origin}")
            if r.unused:
                lines.append(f"Kept in `extra` / 保留在extra: {', '.join(r.unused[:30])}")
        o = r.outcome
        if o is not None:
            lines.append(
                f"Result / 结果: {o.status}"
                + (
                    f", {o.rows_loaded}/{o.rows_read} rows would load into raw.{o.table}"
                    if o.table
                    else ""
                )
                + (f", {o.rows_rejected} rejected" if o.rows_rejected else "")
                + (f" — {o.message}" if o.message else "")
            )
        if r.preview:
            lines.append("Parsed preview / 解析预览:")
            for row in r.preview:
                shown = {
                    c: v for c, v in zip(r.preview_columns, row, strict=True) if v not in (None, "")
                }
                lines.append("  " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        if r.rejects:
            lines.append("Problems / 问题:")
            for row_number, column, value, reason in r.rejects:
                lines.append(
                    f"  row {row_number}, column '{column}', value {shown_value(value)}: {reason}"
                )
            if r.problems_total > len(r.rejects):
                lines.append(
                    f"  … and {r.problems_total - len(r.rejects)} more / 另有 "
                    f"{r.problems_total - len(r.rejects)} 个问题 (all of them: `oppwh run`, then "
                    "raw.rejects)"
                )
        lines.append("")
    return "\n".join(lines)
