"""Installation-wide defaults, named once. A data folder's `oppwh.yml` overrides them
(`timezone:`, `currency:`, and per source under `sources:`), and `oppwh run --timezone`
overrides the file."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
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


def has_daylight_saving(name: str, year: int = 2025) -> bool:
    """Whether the zone's UTC offset changes within a year (then local day arithmetic must
    use its wall clock: a day can have 23 or 25 hours)."""
    zone = ZoneInfo(name)
    offsets = {
        datetime(y, m, 15, tzinfo=zone).utcoffset() for y in (year, year + 1) for m in range(1, 13)
    }
    return len(offsets) > 1


def valid_currency(code: str) -> bool:
    """An ISO 4217-shaped code (three letters): the reporting rates seed keys on it."""
    return isinstance(code, str) and len(code) == 3 and code.isalpha()


def today_in(timezone: str) -> date:
    """Today's date in the business time zone (not the machine's)."""
    return datetime.now(ZoneInfo(timezone)).date()


def end_of_day(day: date, timezone: str) -> datetime:
    """The instant `day` ends in the business time zone: what "as of that day" includes."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(timezone))
