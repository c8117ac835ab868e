"""The native format: CSVs whose headers are the canonical column names (DESIGN.md)."""

from __future__ import annotations

from ingestion.formats.base import Field, Format, Output
from ingestion.schema import TABLES

# Headers that must all be present beyond the required ones, where the required columns
# alone are too common to identify the table.
EXTRA_SIGNATURE = {"stage_definitions": ("stage", "stage_order")}


def native_format(table_name: str) -> Format:
    table = TABLES[table_name]
    fields = {c.name: Field(sources=(c.name,)) for c in table.columns}
    return Format(
        name=f"native {table_name}",
        label=f"Native {table.label}",
        source_system="native",
        outputs=(Output(table_name, fields),),
        required=tuple(table.required),
        signature=(EXTRA_SIGNATURE[table_name],) if table_name in EXTRA_SIGNATURE else (),
        name_hints=(table_name, table_name.rstrip("s")),
    )


NATIVE_FORMATS = tuple(native_format(name) for name in TABLES)
