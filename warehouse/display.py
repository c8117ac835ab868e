"""Numbers and words as people read them: amounts in 万/亿 for Chinese readers and K/M for
English ones, with the currency's sign, and the shared labels. Used by every text meant for
people (chat reminders, the weekly review, the dashboards, the DuckDB comments)."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import yaml

# Words for people shared by the dashboards, the reports and the DuckDB comments.
LABELS_FILE = Path(__file__).with_name("labels.yml")


@cache
def labels() -> dict:
    """warehouse/labels.yml: loss-reason categories, marts' and columns' Chinese names."""
    return yaml.safe_load(LABELS_FILE.read_text(encoding="utf-8"))


# The loss-reason categories (dbt seed loss_reason_taxonomy) as people read them: (zh, en).
LOSS_CATEGORIES: dict[str, tuple[str, str]] = {
    code: (zh, en) for code, (zh, en) in labels()["loss_categories"].items()
}
CURRENCY_SIGNS = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$"}


def _sign(currency: str | None) -> str:
    code = (currency or "").upper()
    return CURRENCY_SIGNS.get(code, f"{code} " if code else "")


def _short(number: float, steps: tuple[tuple[float, str], ...]) -> str:
    for size, unit in steps:
        if abs(number) >= size:
            scaled = number / size
            return f"{scaled:,.1f}".removesuffix(".0") + unit
    return f"{number:,.0f}"


def format_amount(value, currency: str | None, lang: str) -> str:
    """1202700 CNY: ¥120.3万 (zh), ¥1.2M (en); blank when there is no amount."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    number = float(value)
    steps = ((1e8, "亿"), (1e4, "万")) if lang == "zh" else ((1e9, "B"), (1e6, "M"), (1e3, "K"))
    return _sign(currency) + _short(number, steps)


def loss_category(code: str | None, lang: str) -> str:
    zh, en = LOSS_CATEGORIES.get(code or "unspecified", (code, code))
    return zh if lang == "zh" else en
