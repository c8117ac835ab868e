"""Installation-wide defaults, named once. A data folder's `oppwh.yml` overrides them
(`timezone:`, `currency:`, and per source under `sources:`), and `oppwh run --timezone`
overrides the file."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The business time zone: a timestamp without a zone is local time there, and it decides
# every local day (the as-of day, ages, weeks, cycle days, the schedule, the dashboards).
DEFAULT_TIMEZONE = "Asia/Shanghai"
# The currency of an amount whose export names none.
DEFAULT_CURRENCY = "CNY"


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def valid_currency(code: str) -> bool:
    """An ISO 4217-shaped code (three letters): the reporting rates seed keys on it."""
    return isinstance(code, str) and len(code) == 3 and code.isalpha()
