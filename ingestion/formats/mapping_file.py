"""User mappings: a YAML file maps any CRM's export onto one canonical table.

Example (``DATA_DIR/mappings/zoho_deals.yml``, a Zoho CRM deals export)::

    name: zoho deals
    source_system: zoho
    table: opportunities
    current_state: true        # each load is a dated snapshot (no stage history export)
    export: full               # or partial: a filtered export never removes records
    match: [Record Id, Deal Name]        # headers that identify the file
    columns:
      opportunity_id: Record Id
      opportunity_name: Deal Name
      created_at: Created Time
      stage: Stage
      owner_id: Deal Owner.id
      amount: [Amount, Expected Revenue] # several headers: the first non-blank cell wins
    values:
      stage: {Qualification: 需求确认, Closed Won: 赢单, Closed Lost: 输单}
    defaults:                  # when every header of a column is blank in a row
      created_at: export_date  # the export's date (file name, else the as-of day)
      currency: USD            # or a constant
    decimal_comma: false       # true: amounts like 1.234,56 or 8 000,50 € (European exports)

Only header names and words are taken from the file: no SQL.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import field_validator

from ingestion.formats.base import Field, Format, Output
from ingestion.schema import AMOUNT, AMOUNT_DECIMAL_COMMA, TABLES
from warehouse.user_settings import SettingsModel, validated
from warehouse.user_yaml import UserYamlError, load_yaml_file


class MappingFileError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


Headers = str | list[str]


class MappingFile(SettingsModel):
    """The keys of one mapping file (which columns exist is checked against its table)."""

    name: str | int | float
    table: str
    columns: dict[str, Headers | None]
    source_system: str | int | None = None
    current_state: bool = False
    export: Literal["full", "partial"] = "full"
    match: Headers | None = None
    values: dict[str, dict[str | int | float | bool, str | int | float | bool] | None] = {}
    defaults: dict[str, str | int | float | date | datetime | None] = {}
    # Amounts written with a decimal comma (1.234,56; 8 000,50 €), as European exports do.
    decimal_comma: bool = False

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if value not in TABLES:
            raise ValueError(f"'{value}' is not a canonical table (one of: {', '.join(TABLES)})")
        return value

    @field_validator("defaults", mode="before")
    @classmethod
    def _plain_defaults(cls, value):
        for column, default in (value or {}).items():
            if isinstance(default, bool | dict | list):
                raise ValueError(f"{column} must be a value or export_date, not {default!r}")
        return value


def _headers(value: Headers | None) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def parse_mapping(data: dict, origin: str) -> Format:
    """Turn the YAML content of one mapping file into a Format."""
    if not isinstance(data, dict):
        raise MappingFileError(f"{origin}: expected a mapping with name, table, match, columns")
    mapping = validated(MappingFile, data, origin, MappingFileError)
    table_name, table = mapping.table, TABLES[mapping.table]
    for key, names in (("defaults", mapping.defaults), ("columns", mapping.columns)):
        for column in names:
            if column not in table.column_names:
                raise MappingFileError(
                    f"{origin}: {key}.{column} is not a column of {table_name} "
                    f"(one of: {', '.join(table.column_names)})"
                )
    # A column only ever filled by its default maps no header.
    columns = {**{c: None for c in mapping.defaults}, **mapping.columns}
    kinds = {c.name: c.kind for c in table.columns}
    fields = {}
    for column, sources in columns.items():
        words = mapping.values.get(column) or {}
        default = mapping.defaults.get(column)
        fields[column] = Field(
            _headers(sources),
            kind=AMOUNT_DECIMAL_COMMA
            if mapping.decimal_comma and kinds[column] == AMOUNT
            else None,
            values=tuple((str(k), str(v)) for k, v in words.items()),
            first_non_blank=True,
            default=None if default is None else str(default),
        )
    missing = [c for c in table.required if c not in fields]
    if missing:
        raise MappingFileError(f"{origin}: columns must map the required {', '.join(missing)}")
    match = _headers(mapping.match) or tuple(
        fields[c].sources[0] for c in table.required if fields[c].sources
    )
    return Format(
        name=f"mapping {mapping.name}",
        label=f"{mapping.name} (mapping {Path(origin).name})",
        source_system=str(mapping.source_system or mapping.name),
        outputs=(Output(table_name, fields),),
        required=tuple(table.required),
        signature=(match,),
        current_state=mapping.current_state,
        full_export=mapping.export == "full",
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
