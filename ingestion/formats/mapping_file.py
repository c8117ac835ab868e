"""User mappings: a YAML file maps any CRM's export onto one canonical table.

Example (``DATA_DIR/mappings/pipedrive_deals.yml``)::

    name: pipedrive deals
    source_system: pipedrive
    table: opportunities
    current_state: true        # each load is a dated snapshot (no stage history export)
    export: full               # or partial: a filtered export never removes records
    match: [Deal - ID, Deal - Title]     # headers that identify the file
    columns:
      opportunity_id: Deal - ID
      opportunity_name: Deal - Title
      created_at: Deal - Deal created
      stage: Deal - Stage
      status: Deal - Status
      amount: [Deal - Value, Value]      # several headers: the first non-blank cell wins
    values:
      status: {Won: won, Lost: lost, Open: open}
      stage: {Qualified: 需求确认}
    defaults:                  # when every header of a column is blank in a row
      created_at: export_date  # the export's date (file name, else the as-of day)
      currency: USD            # or a constant

Only header names and words are taken from the file: no SQL.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.formats.base import Field, Format, Output
from ingestion.schema import TABLES
from warehouse.user_yaml import UserYamlError, load_yaml_file


class MappingFileError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


def _as_tuple(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingFileError(f"{where}: expected a header name or a list of header names")


def parse_mapping(data: dict, origin: str) -> Format:
    """Turn the YAML content of one mapping file into a Format."""
    if not isinstance(data, dict):
        raise MappingFileError(f"{origin}: expected a mapping with name, table, match, columns")
    for key in ("name", "table", "columns"):
        if key not in data:
            raise MappingFileError(f"{origin}: missing key '{key}'")
    table_name = data["table"]
    if table_name not in TABLES:
        raise MappingFileError(
            f"{origin}: table '{table_name}' is not a canonical table (one of: {', '.join(TABLES)})"
        )
    table = TABLES[table_name]
    columns = data["columns"]
    if not isinstance(columns, dict):
        raise MappingFileError(f"{origin}: 'columns' must map canonical columns to headers")
    values = data.get("values") or {}
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise MappingFileError(f"{origin}: 'defaults' must map canonical columns to a value")
    for column in defaults:
        if column not in table.column_names:
            raise MappingFileError(
                f"{origin}: defaults.{column} is not a column of {table_name} "
                f"(one of: {', '.join(table.column_names)})"
            )
    fields = {}
    for column in defaults:
        if column not in columns:  # a column only ever filled by its default
            columns = {**columns, column: []}
    for column, sources in columns.items():
        if column not in table.column_names:
            raise MappingFileError(
                f"{origin}: columns.{column} is not a column of {table_name} "
                f"(one of: {', '.join(table.column_names)})"
            )
        words = values.get(column) or {}
        if not isinstance(words, dict):
            raise MappingFileError(f"{origin}: values.{column} must map source words to words")
        default = defaults.get(column)
        if isinstance(default, bool | dict | list):
            raise MappingFileError(
                f"{origin}: defaults.{column} must be a value or export_date, not {default!r}"
            )
        fields[column] = Field(
            _as_tuple(sources, f"{origin}: columns.{column}") if sources != [] else (),
            values=tuple((str(k), str(v)) for k, v in words.items()),
            first_non_blank=True,
            default=None if default is None else str(default),
        )
    missing = [c for c in table.required if c not in fields]
    if missing:
        raise MappingFileError(f"{origin}: columns must map the required {', '.join(missing)}")
    export = data.get("export", "full")
    if export not in ("full", "partial"):
        raise MappingFileError(f"{origin}: export must be 'full' or 'partial', not {export!r}")
    match = data.get("match") or [fields[c].sources[0] for c in table.required if fields[c].sources]
    return Format(
        name=f"mapping {data['name']}",
        label=f"{data['name']} (mapping {Path(origin).name})",
        source_system=str(data.get("source_system") or data["name"]),
        outputs=(Output(table_name, fields),),
        required=tuple(table.required),
        signature=(_as_tuple(match, f"{origin}: match"),),
        current_state=bool(data.get("current_state", False)),
        full_export=export == "full",
    )


def load_mappings(folder: Path) -> tuple[Format, ...]:
    """Every *.yml / *.yaml mapping in the folder, in name order."""
    if not folder.is_dir():
        return ()
    formats = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        try:
            data = load_yaml_file(path)
        except UserYamlError as exc:
            raise MappingFileError(str(exc)) from exc
        formats.append(parse_mapping(data, str(path)))
    return tuple(formats)
