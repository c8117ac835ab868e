"""YAML a user wrote (oppwh.yml, mappings, scoring.yml), read with bounds.

A 538-byte file of nested aliases expands to gigabytes ("billion laughs"): settings files
have no use for aliases, so they are refused, and so is a file over the size limit.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_YAML_BYTES = 1 << 20


class UserYamlError(ValueError):
    """A settings file that is not valid, bounded YAML; the message names the file."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (`*name`) instead of expanding them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in settings files", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml_text(text: str, where: str):
    """Parse settings YAML; aliases and oversized text are refused with `where` named."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise UserYamlError(
            f"{where}: larger than the {MAX_YAML_BYTES:,}-byte limit for a settings file"
        )
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UserYamlError(f"{where}: not valid YAML ({exc})") from exc


def read_settings_text(path: Path) -> str:
    """A settings file's text, its size checked before it is read."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise UserYamlError(
            f"{path}: {size:,} bytes, over the {MAX_YAML_BYTES:,}-byte limit for a settings file"
        )
    return path.read_text(encoding="utf-8")


def load_yaml_file(path: Path):
    """Read and parse a settings file, checking its size before reading it."""
    return load_yaml_text(read_settings_text(path), str(path))
