"""How an export format is described, recognised and turned into SQL.

A ``Format`` says which headers identify it and, per canonical table it feeds
(``Output``), which source column feeds each canonical column (``Field``). Formats are
data, so a user's YAML mapping and the built-in adapters go through the same code.
Header text never becomes SQL: source columns are referenced as ``c0``, ``c1``…, and
value maps travel as bound parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ingestion.schema import SQL_TYPES, TABLES, TEXT
from ingestion.values import PARSERS, TrimmedText, blank_to_null, parse_sql


def normalise_header(name: str) -> str:
    """Header text as compared: no BOM, trimmed, lower case, spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", name.replace("\ufeff", "").strip().lower())


@dataclass(frozen=True)
class Field:
    """Where one canonical column comes from.

    sources: header names, in order of preference (any spelling, see normalise_header).
    kind:    how to parse the text, when not the canonical column's own kind.
    values:  source word -> canonical word (case-insensitive); other words pass through.
    sql:     an expression over source columns instead of one column: ``{Header}`` is the
             header's text, ``{bool:Header}``, ``{ts:Header}``, ``{date:Header}``,
             ``{day:Header}`` its parsed value; a header the file lacks is NULL.
    hash_fallback: when the id is blank or missing, a hash of the whole row (so identical
             rows count once).
    first_non_blank: with several sources present in the file, the first one whose cell
             is not blank in the row wins (mapping files); otherwise the first header the
             file has wins.
    default: what fills the column when every source is blank in a row: a constant, or
             ``export_date`` (the export's date: from the file name, else the as-of day).
             Such rows are flagged as estimated (raw ``_estimated``).
    """

    sources: tuple[str, ...] = ()
    kind: str | None = None
    values: tuple[tuple[str, str], ...] = ()
    sql: str | None = None
    hash_fallback: bool = False
    first_non_blank: bool = False
    default: str | None = None


EXPORT_DATE_DEFAULT = "export_date"


@dataclass(frozen=True)
class Unpivot:
    """One row per matching header (HubSpot `Date entered "<Stage> (<Pipeline>)"`)."""

    header_pattern: str  # regex over the original header; group 1 is the label
    label_column: str  # canonical column that receives the label (stage)
    value_column: str  # canonical column that receives the header's value (entered_at)


@dataclass(frozen=True)
class Output:
    table: str
    fields: dict[str, Field]
    # Rows for which this template is false are not loaded into this table (e.g. field
    # history rows that are not stage changes); they are counted as ignored.
    where: str | None = None
    unpivot: Unpivot | None = None


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    source_system: str
    outputs: tuple[Output, ...]
    # Canonical columns of the first output that must come from a header for a match.
    required: tuple[str, ...] = ()
    # At least one of these header sets must be present in full (normalised names).
    signature: tuple[tuple[str, ...], ...] = ()
    # None of these headers may be present.
    forbidden: tuple[str, ...] = ()
    # A current-state export: each load is also a dated snapshot of every record.
    current_state: bool = False
    # A full export lists every record; a record missing from a later full export is
    # marked no longer exported. A partial (filtered) export never removes anything.
    full_export: bool = True
    # Recognised, but holds nothing the warehouse uses (say why).
    ignore_reason: str = ""
    # Words in the file name that make this format more likely when two formats tie.
    name_hints: tuple[str, ...] = ()


@dataclass
class Params:
    """Named parameters collected while building SQL."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


@dataclass(frozen=True)
class ResolvedColumn:
    typed_sql: str
    raw_sql: str | None  # the text checked for "unreadable" rejects; None: not checked
    shown: str  # the header as the user wrote it, for messages
    kind: str
    # True in the rows whose value came from the mapping's default (SQL), else None
    estimated_sql: str | None = None


@dataclass
class ResolvedOutput:
    table: str
    columns: dict[str, ResolvedColumn]
    where_sql: str | None
    unpivot_headers: list[tuple[int, str]]  # (source index, label) for unpivot outputs
    unpivot: Unpivot | None

    def estimated_sql(self) -> str:
        """The canonical columns a row took from defaults, comma-separated (NULL: none)."""
        flags = [
            f"CASE WHEN {c.estimated_sql} THEN '{name}' END"
            for name, c in self.columns.items()
            if c.estimated_sql is not None
        ]
        if not flags:
            return "CAST(NULL AS VARCHAR)"
        return f"nullif(concat_ws(',', {', '.join(flags)}), '')"


def header_index(headers: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, header in enumerate(headers):
        index.setdefault(normalise_header(header), i)
    return index


def ref(i: int) -> str:
    return f"c{i}"


def find_source(field_: Field, index: dict[str, int]) -> int | None:
    for source in field_.sources:
        i = index.get(normalise_header(source))
        if i is not None:
            return i
    return None


def present_sources(field_: Field, index: dict[str, int]) -> list[int]:
    """Every source header of the field that the file has, in order of preference."""
    found = (index.get(normalise_header(source)) for source in field_.sources)
    return list(dict.fromkeys(i for i in found if i is not None))


def default_text_sql(default: str, params: Params) -> str:
    """The default's text, parsed like a cell: the export date, or the constant."""
    if default == EXPORT_DATE_DEFAULT:
        return "CAST($export_date AS VARCHAR)"
    return f"CAST({params.add(default)} AS VARCHAR)"


_PLACEHOLDER = re.compile(r"\{(?:(bool|ts|date|day|num):)?([^{}]+)\}")
_TEMPLATE_KINDS = {
    "bool": "boolean",
    "ts": "timestamp",
    "date": "date",
    "day": "day_timestamp",
    "num": "amount",
}


def render_template(template: str, index: dict[str, int]) -> str:
    """Fill ``{kind:Header}`` placeholders with parse expressions over source refs."""

    def fill(match: re.Match) -> str:
        kind, header = match.group(1), match.group(2)
        i = index.get(normalise_header(header))
        if i is None:
            return "NULL"
        if kind is None:
            return blank_to_null(ref(i))
        return f"({PARSERS[_TEMPLATE_KINDS[kind]](ref(i))})"

    return _PLACEHOLDER.sub(fill, template)


def value_map_sql(text_sql: str, values: tuple[tuple[str, str], ...], params: Params) -> str:
    if not values:
        return text_sql
    whens = " ".join(
        f"WHEN {params.add(src.strip().lower())} THEN {params.add(dst)}" for src, dst in values
    )
    return f"(CASE lower({text_sql}) {whens} ELSE {text_sql} END)"


def resolve_output(
    output: Output, headers: list[str], params: Params, all_refs: list[str]
) -> ResolvedOutput:
    """SQL for each canonical column of one output, given this file's headers."""
    table = TABLES[output.table]
    index = header_index(headers)
    columns: dict[str, ResolvedColumn] = {}
    for name, spec in output.fields.items():
        kind = spec.kind or table.column(name).kind
        i = find_source(spec, index)
        if spec.sql is not None:
            columns[name] = ResolvedColumn(
                f"CAST({render_template(spec.sql, index)} AS {_sql_type(table, name)})",
                None,
                name,
                kind,
            )
            continue
        present = present_sources(spec, index) if spec.first_non_blank else []
        if i is None and not spec.hash_fallback and spec.default is None:
            continue
        if len(present) > 1:  # the first non-blank cell of the row wins
            # trimmed texts or NULL, coalesced: trimmed text or NULL again
            text = TrimmedText(f"coalesce({', '.join(blank_to_null(ref(j)) for j in present)})")
            shown = " / ".join(headers[j] for j in present)
        else:
            text = blank_to_null(ref(i)) if i is not None else "NULL"
            shown = headers[i] if i is not None else name
        raw = text if len(present) > 1 else (ref(i) if i is not None else None)
        estimated = None
        if spec.default is not None:
            estimated = f"({text}) IS NULL"
            text = f"coalesce({text}, {default_text_sql(spec.default, params)})"
            raw = text
        if spec.hash_fallback:
            row_hash = f"md5(concat_ws('|', {', '.join(all_refs)}))"
            typed = f"coalesce({text}, {row_hash})"
            raw = None
        elif kind == TEXT:
            typed = value_map_sql(text, spec.values, params)
        else:
            typed = parse_sql(kind, value_map_sql(text, spec.values, params))
        columns[name] = ResolvedColumn(
            f"CAST({typed} AS {_sql_type(table, name)})", raw, shown, kind, estimated
        )
    unpivot_headers: list[tuple[int, str]] = []
    if output.unpivot is not None:
        pattern = re.compile(output.unpivot.header_pattern)
        for i, header in enumerate(headers):
            match = pattern.search(header)
            if match:
                label = next(g for g in match.groups() if g)
                unpivot_headers.append((i, label.strip()))
    where_sql = render_template(output.where, index) if output.where else None
    return ResolvedOutput(output.table, columns, where_sql, unpivot_headers, output.unpivot)


def _sql_type(table, name: str) -> str:
    return SQL_TYPES[table.column(name).kind]


@dataclass(frozen=True)
class Match:
    format: Format
    score: int


def match_format(fmt: Format, headers: list[str], file_name: str) -> Match | None:
    """How well this format fits the header; None when it does not fit at all."""
    index = header_index(headers)
    names = set(index)
    if any(normalise_header(h) in names for h in fmt.forbidden):
        return None
    signature_hits = [
        sig for sig in fmt.signature if all(normalise_header(h) in names for h in sig)
    ]
    if fmt.signature and not signature_hits:
        return None
    score = 10 * max((len(sig) for sig in signature_hits), default=0) + 5 * len(fmt.required)
    if fmt.outputs:
        first = fmt.outputs[0]
        for column in fmt.required:
            spec = first.fields[column]
            if find_source(spec, index) is None and spec.default is None:
                return None
        for output in fmt.outputs:
            score += sum(1 for f in output.fields.values() if find_source(f, index) is not None)
    stem = normalise_header(file_name)
    if any(normalise_header(h) in stem for h in fmt.name_hints):
        score += 1
    return Match(fmt, score)


def missing_for(fmt: Format, headers: list[str]) -> list[str]:
    """What a format would still need from this header (for 'closest format' messages)."""
    index = header_index(headers)
    names = set(index)
    missing: list[str] = []
    if fmt.signature:
        best = min(
            fmt.signature, key=lambda sig: sum(normalise_header(h) not in names for h in sig)
        )
        missing += [h for h in best if normalise_header(h) not in names]
    if fmt.outputs:
        first = fmt.outputs[0]
        for column in fmt.required:
            spec = first.fields[column]
            if find_source(spec, index) is None and spec.default is None:
                missing.append(" / ".join(spec.sources) or column)
    return list(dict.fromkeys(missing))


def overlap(fmt: Format, headers: list[str]) -> int:
    index = header_index(headers)
    return sum(
        1
        for output in fmt.outputs
        for f in output.fields.values()
        if find_source(f, index) is not None
    )
