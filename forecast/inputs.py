"""The relations the forecast reads besides the grades, declared once (as scoring.inputs):
the Spark engine copies them back into the warehouse, and the Dagster asset depends on them.
The backtest scores past deals, so scoring's inputs are the forecast's too."""

from __future__ import annotations

from scoring.inputs import INPUT_RELATIONS as SCORING_INPUTS

INPUT_RELATIONS: tuple[tuple[str, str], ...] = (
    *SCORING_INPUTS,
    ("intermediate", "int_stages_resolved"),
    ("intermediate", "int_targets"),
)
