"""The relations scoring reads, declared once: the engines make sure each exists in the
warehouse before scoring runs (Spark's build is copied back for exactly these, besides the
marts), and the Dagster asset depends on them."""

from __future__ import annotations

# (schema, relation) of everything scoring/features.py and scoring/model.py read. Add a
# relation here when a new signal reads one.
INPUT_RELATIONS: tuple[tuple[str, str], ...] = (
    ("marts", "opportunities"),
    ("marts", "opportunity_lifecycle"),
    ("marts", "funnel_conversion"),
    ("intermediate", "int_opportunity_touches"),
    ("staging", "stg_raw__opportunity_snapshots"),
)
