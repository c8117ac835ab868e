"""Errors a sales-ops analyst can act on: each names the file and what was expected."""

from __future__ import annotations


class IngestionError(Exception):
    """Base for every problem with an export file."""

    def __init__(self, file_name: str, message: str):
        self.file_name = file_name
        self.message = message
        super().__init__(f"{file_name}: {message}")


class UnrecognisedFileError(IngestionError):
    """No known format matches the file's header; the file is set aside, not loaded."""

    def __init__(self, file_name: str, headers: list[str], closest: str | None, missing: list[str]):
        self.headers = headers
        self.closest = closest
        self.missing = missing
        shown = ", ".join(headers[:20]) + (" …" if len(headers) > 20 else "")
        hint = (
            f" Closest format: {closest}, which also needs column(s): {', '.join(missing)}."
            if closest
            else ""
        )
        super().__init__(
            file_name,
            f"no known export format matches this file's header (columns found: {shown}).{hint}",
        )


class UnreadableFileError(IngestionError):
    """The file cannot be read at all (encoding, broken quoting, not a table)."""


class IgnoredFileError(IngestionError):
    """A recognised export the warehouse has no use for (e.g. Salesforce Contacts)."""
