"""Every known export format, and detection of a file's format from its header."""

from __future__ import annotations

from ingestion.errors import UnrecognisedFileError
from ingestion.formats.base import Format, match_format, missing_for, overlap
from ingestion.formats.cn_crm import CN_CRM_FORMATS
from ingestion.formats.hubspot import HUBSPOT_FORMATS
from ingestion.formats.native import NATIVE_FORMATS
from ingestion.formats.salesforce import salesforce_formats

USER_MAPPING_BONUS = 1000  # a user's own mapping wins over any built-in guess


def builtin_formats(salesforce_loss_reason_fields: tuple[str, ...] = ()) -> tuple[Format, ...]:
    return (
        *salesforce_formats(salesforce_loss_reason_fields),
        *HUBSPOT_FORMATS,
        *CN_CRM_FORMATS,
        *NATIVE_FORMATS,
    )


def detect_format(
    headers: list[str],
    file_name: str,
    formats: tuple[Format, ...] | None = None,
    user_formats: tuple[Format, ...] = (),
) -> Format:
    """The best-fitting format for this header, else an error listing what was found
    and what the closest format lacks."""
    formats = builtin_formats() if formats is None else formats
    best, best_score = None, -1
    for fmt in (*user_formats, *formats):
        match = match_format(fmt, headers, file_name)
        if match is None:
            continue
        score = match.score + (USER_MAPPING_BONUS if fmt in user_formats else 0)
        if score > best_score:
            best, best_score = fmt, score
    if best is not None:
        return best
    # The closest format is the one missing the fewest required columns (most overlap on
    # a tie): a native file lacking only created_at is "native", not whatever shares most.
    candidates = [f for f in (*user_formats, *formats) if f.outputs and overlap(f, headers) > 0]
    closest = min(
        candidates,
        key=lambda f: (len(missing_for(f, headers)), -overlap(f, headers)),
        default=None,
    )
    if closest is None:
        raise UnrecognisedFileError(file_name, headers, None, [])
    raise UnrecognisedFileError(file_name, headers, closest.name, missing_for(closest, headers))


__all__ = ["Format", "builtin_formats", "detect_format"]
