"""Validation of the users' settings files (oppwh.yml, mapping files, scoring.yml) with
pydantic models: one error per file, naming the file and the key and saying what was
expected, so a typo is fixed from the message alone.

Each file's model lives beside the code that uses it (ingestion/config.py,
ingestion/formats/mapping_file.py, scoring/config.py); this module turns pydantic's errors
into those messages.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

Model = TypeVar("Model", bound=BaseModel)


class SettingsModel(BaseModel):
    """A section of a settings file: unknown keys are refused (they are typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_sections(cls, data):
        """A key left blank in YAML (`quality:` with nothing under it) is an empty section
        or mapping, as a user means it, not an error."""
        if not isinstance(data, dict):
            return data
        sections = {
            name
            for name, field in cls.model_fields.items()
            if isinstance(field.default, dict | BaseModel)
        }
        return {k: ({} if v is None and k in sections else v) for k, v in data.items()}


def key_path(location: tuple) -> str:
    """pydantic's error location as the YAML key path users read (sources.hubspot.timezone)."""
    return ".".join(str(part) for part in location if not isinstance(part, int)) or "(file)"


def error_text(error: dict) -> str:
    """One error: our own validators' sentence as written, pydantic's with what it got."""
    key = key_path(error["loc"])
    if error["type"] == "value_error":
        return f"{key} {str(error['msg']).removeprefix('Value error, ')}"
    if error["type"] == "extra_forbidden":
        return f"{key} is not a setting (a typo?)"
    if error["type"] == "missing":
        return f"missing key '{key}'"
    got = error.get("input")
    return f"{key}: {error['msg'][0].lower()}{error['msg'][1:]} (got {got!r})"


def validated(
    model: type[Model], data: Any, origin: str, error: type[Exception] = ValueError
) -> Model:
    """`data` (a parsed YAML file) as `model`, else `error` naming `origin` and the key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise error(f"{origin}: {error_text(exc.errors()[0])}") from exc
