"""How the dashboards show numbers: amounts in 万/亿 (zh) or K/M (en), rates as percentages,
days whole; decided once per column from its name, for chart axes and for tables alike."""

from __future__ import annotations

import altair as alt

AMOUNT_WORDS = ("amount", "pipeline", "revenue", "_error")
# Amount columns whose names hold none of those words.
AMOUNT_NAMES = ("gap", "actual_from_open_deals")
RATE_WORDS = (
    "rate",
    "share",
    "conversion",
    "cumulative",
    "completeness",
    "lift_",
    "probability",
    "attainment",
    "_pct",
)
DAY_WORDS = ("days",)


def column_kind(name: str) -> str | None:
    """amount, rate, days or None (shown as it is), from a column's name."""
    lowered = name.split(":")[0].lower()
    if lowered in AMOUNT_NAMES or any(w in lowered for w in AMOUNT_WORDS):
        return "amount"
    if any(w in lowered for w in RATE_WORDS):
        return "rate"
    if any(w in lowered for w in DAY_WORDS):
        return "days"
    return None


def amount_label_expr(lang: str) -> str:
    """A Vega expression that writes an axis value as people read amounts in `lang`."""
    if lang == "zh":
        return (
            "abs(datum.value) >= 1e8 ? format(datum.value / 1e8, ',.1~f') + '亿' : "
            "abs(datum.value) >= 1e4 ? format(datum.value / 1e4, ',.0f') + '万' : "
            "format(datum.value, ',.0f')"
        )
    return (
        "abs(datum.value) >= 1e9 ? format(datum.value / 1e9, ',.1~f') + 'B' : "
        "abs(datum.value) >= 1e6 ? format(datum.value / 1e6, ',.1~f') + 'M' : "
        "abs(datum.value) >= 1e3 ? format(datum.value / 1e3, ',.0f') + 'K' : "
        "format(datum.value, ',.0f')"
    )


def axis(field: str, lang: str) -> alt.Axis:
    """Horizontal labels, never cut short, in the column's own number format."""
    kind = column_kind(field)
    options: dict = {"labelAngle": 0, "labelLimit": 400, "labelOverlap": "greedy"}
    if kind == "amount":
        options["labelExpr"] = amount_label_expr(lang)
    elif kind == "rate":
        options["format"] = ".0%"
    elif kind == "days":
        options["format"] = ",.0f"
    return alt.Axis(**options)


def reasons_in(text: str | None, lang: str) -> str | None:
    """A grade's reasons ("▲ 今天有跟进 / followed up today; ▼ …") in one language."""
    if not text:
        return text
    parts = []
    for item in text.split("; "):
        arrow, body = (item[0], item[1:].strip()) if item[:1] in "▲▼" else ("", item.strip())
        zh, slash, en = body.partition("/ ")
        chosen = (zh if lang == "zh" else en).strip() if slash else body
        parts.append(f"{arrow} {chosen}".strip())
    return ("；" if lang == "zh" else "; ").join(parts)
