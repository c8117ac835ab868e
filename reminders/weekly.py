"""The weekly pipeline review (周报): one self-contained HTML file for managers.

Read from the serving copy (deal names masked there): the week's pipeline movement, follow-up
per owner, stale and stuck deals, grades and whether they passed their validation, forecast
against target when targets are loaded, and the week's loss reasons. Charts are inline SVG;
the page has no script and no external reference, and prints on A4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path

import yaml

from reminders.charts import hbar_chart
from reminders.items import GRADE_ORDER_SQL
from warehouse.database import connect
from warehouse.display import format_amount, loss_category

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
FORECAST_MONTHS_SHOWN = 3  # the as-of month and the two after it
# Per forecast month: expected, its 80% interval (the owners' spreads combined), and the
# target (the owners' targets, else the teams').
FORECAST_SQL = """
SELECT f.forecast_month, sum(f.expected_amount),
    greatest(sum(f.expected_amount) - 1.2816 * sqrt(sum(f.stddev_amount * f.stddev_amount)), 0),
    sum(f.expected_amount) + 1.2816 * sqrt(sum(f.stddev_amount * f.stddev_amount)),
    coalesce(
        (SELECT sum(t.target_amount) FROM marts.target_attainment AS t
         WHERE t.target_level = 'owner' AND t.month = f.forecast_month),
        (SELECT sum(t.target_amount) FROM marts.target_attainment AS t
         WHERE t.target_level = 'team' AND t.month = f.forecast_month))
FROM marts.revenue_forecast AS f
GROUP BY 1 ORDER BY 1 LIMIT $n
"""
WEEKS_SHOWN = 8  # pipeline movement: this week and the seven before
TOP_DEALS = 15

# The review's words, Chinese and English (reminders/labels.yml: key: [zh, en]).
TEXT: dict[str, list[str]] = yaml.safe_load(
    (Path(__file__).with_name("labels.yml")).read_text(encoding="utf-8")
)


def t(key: str, lang: str) -> str:
    return TEXT[key][0 if lang == "zh" else 1]


class WeekError(ValueError):
    """A --week that is not an ISO week (YYYY-Www)."""


def week_start(week: str) -> date:
    """Monday of ISO week `2025-W27`."""
    match = WEEK.match(week)
    if not match:
        raise WeekError(f"--week {week!r}: expected an ISO week such as 2025-W27")
    try:
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError as exc:
        raise WeekError(f"--week {week!r}: {exc}") from exc


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Review:
    """Everything one week's review shows, read from the serving copy."""

    week: str
    monday: date
    as_of: date
    timezone: str
    currency: str
    movement: dict
    trend: list[tuple]
    follow_up: list[tuple]
    attention: list[tuple]
    attention_total: int
    grades: list[tuple]
    validation: list[tuple]
    losses: list[tuple]
    # (month, expected, low, high, target) for the as-of month and the next two
    forecast: list[tuple] = ()
    # the as-of month's targets: (name, target, won, expected, attainment, gap)
    attainment: list[tuple] = ()
    # the backtest: (months, the forecast's total miss, the stage baseline's total miss)
    accuracy: tuple | None = None


def read_review(serving: Path, week: str | None = None) -> Review:
    """The review of `week` (default: the week holding the latest as-of day)."""
    with connect(serving, read_only=True) as con:
        as_of, timezone = con.execute("SELECT as_of, timezone FROM main.publication").fetchone()
        con.execute("SET TimeZone = ?", [timezone])
        week = week or iso_week(as_of)
        monday = week_start(week)
        params = {"monday": monday, "sunday": monday + timedelta(days=6)}
        currency = con.execute(
            "SELECT coalesce(any_value(reporting_currency), 'CNY') FROM marts.opportunities"
        ).fetchone()[0]
        cursor = con.execute(
            "SELECT created, created_amount, advanced, slipped_back, won, won_amount, lost, "
            "lost_amount, open_at_end, open_amount_at_end FROM marts.pipeline_weekly "
            "WHERE week_start = $monday",
            {"monday": monday},
        )
        row = cursor.fetchone()
        names = [c[0] for c in cursor.description]
        movement = dict(zip(names, row, strict=True)) if row else dict.fromkeys(names, 0)
        trend = con.execute(
            "SELECT week_start, won_amount, lost_amount FROM marts.pipeline_weekly "
            "WHERE week_start <= $monday ORDER BY week_start DESC LIMIT $n",
            {"monday": monday, "n": WEEKS_SHOWN},
        ).fetchall()[::-1]
        follow_up = con.execute(
            "SELECT coalesce(owner_name, owner_id), sum(touches), sum(deals_touched), "
            "max(deals_owned) FROM marts.follow_up_weekly WHERE week_start = $monday "
            "AND activity_type = 'all' GROUP BY owner_id, owner_name ORDER BY 2 DESC, 1",
            {"monday": monday},
        ).fetchall()
        attention_sql = (
            "FROM marts.action_items WHERE reason_code IN ('no_follow_up', 'stuck_in_stage')"
        )
        attention = con.execute(
            "SELECT opportunity_name, opportunity_id, coalesce(owner_name, owner_id), grade, "
            f"amount, currency, string_agg(text_zh, '；'), string_agg(text_en, '; ') {attention_sql} "
            "GROUP BY opportunity_name, opportunity_id, owner_name, owner_id, grade, amount, "
            f"currency ORDER BY {GRADE_ORDER_SQL}, "
            f"amount DESC NULLS LAST LIMIT {TOP_DEALS}"
        ).fetchall()
        total = con.execute(f"SELECT count(DISTINCT opportunity_id) {attention_sql}").fetchone()[0]
        grades = con.execute(
            "SELECT grade, count(*) FROM marts.opportunity_priority GROUP BY 1 ORDER BY 1"
        ).fetchall()
        validation = con.execute(
            "SELECT source_system, auc, writeback_status FROM marts.scoring_validation ORDER BY 1"
        ).fetchall()
        losses = con.execute(
            "SELECT loss_reason_category, count(*), sum(amount_reporting) FROM marts.loss_reasons "
            "WHERE CAST(lost_at AS DATE) BETWEEN $monday AND $sunday GROUP BY 1 ORDER BY 3 DESC",
            params,
        ).fetchall()
        forecast = con.execute(FORECAST_SQL, {"n": FORECAST_MONTHS_SHOWN}).fetchall()
        attainment = con.execute(
            "SELECT coalesce(owner_name, owner_id, team), target_amount, won_amount, "
            "expected_amount, attainment, gap FROM marts.target_attainment "
            "WHERE month = date_trunc('month', $as_of) ORDER BY target_level DESC, 1",
            {"as_of": as_of},
        ).fetchall()
        accuracy = con.execute(
            "SELECT count(*), sum(abs(forecast_error)), sum(abs(baseline_error)) "
            "FROM marts.forecast_accuracy"
        ).fetchone()
    return Review(
        week,
        monday,
        as_of,
        timezone,
        currency,
        movement,
        trend,
        follow_up,
        attention,
        total,
        grades,
        validation,
        losses,
        forecast,
        attainment,
        accuracy if accuracy and accuracy[0] else None,
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _movement_html(r: Review, lang: str) -> str:
    m, money = r.movement, lambda v: format_amount(v, r.currency, lang)
    cards = [
        (t("created", lang), m["created"], money(m["created_amount"])),
        (t("advanced", lang), m["advanced"], ""),
        (t("slipped", lang), m["slipped_back"], ""),
        (t("won", lang), m["won"], money(m["won_amount"])),
        (t("lost", lang), m["lost"], money(m["lost_amount"])),
        (t("open_end", lang), m["open_at_end"], money(m["open_amount_at_end"])),
    ]
    tiles = "".join(
        f'<div class="tile"><div class="k">{escape(k)}</div><div class="v">{n or 0}</div>'
        f'<div class="a">{escape(a)}</div></div>'
        for k, n, a in cards
    )
    chart = hbar_chart(
        [str(w) for w, _, _ in r.trend],
        [
            (t("won", lang), [float(x or 0) for _, x, _ in r.trend]),
            (t("lost", lang), [float(x or 0) for _, _, x in r.trend]),
        ],
        lambda v: format_amount(v, r.currency, lang),
    )
    chart = chart or f"<p>{escape(t('none', lang))}</p>"
    return f'<div class="tiles">{tiles}</div><h3>{escape(t("trend", lang))}</h3>{chart}'


def _follow_up_html(r: Review, lang: str) -> str:
    if not r.follow_up:
        return f"<p>{escape(t('none', lang))}</p>"
    chart = hbar_chart(
        [str(name) for name, *_ in r.follow_up],
        [(t("touches", lang), [float(n) for _, n, _, _ in r.follow_up])],
        lambda v: f"{v:.0f}",
    )
    rows = [[name, touches, touched, owned] for name, touches, touched, owned in r.follow_up]
    headers = [t(k, lang) for k in ("owner", "touches", "touched", "owned")]
    return (chart or f"<p>{escape(t('no_touches', lang))}</p>") + _table(headers, rows)


def _attention_html(r: Review, lang: str) -> str:
    if not r.attention:
        return f"<p>{escape(t('none', lang))}</p>"
    rows = [
        [
            f"{name or oid} ({oid})",
            owner,
            grade or "–",
            format_amount(amount, cur, lang),
            zh if lang == "zh" else en,
        ]
        for name, oid, owner, grade, amount, cur, zh, en in r.attention
    ]
    headers = [t(k, lang) for k in ("deal", "owner", "grade", "amount", "why")]
    more = r.attention_total - len(r.attention)
    tail = f"<p>{escape(t('more', lang).format(n=more))}</p>" if more > 0 else ""
    return _table(headers, rows) + tail


def _grades_html(r: Review, lang: str) -> str:
    chart = hbar_chart(
        [g for g, _ in r.grades],
        [(t("n_deals", lang), [float(n) for _, n in r.grades])],
        lambda v: f"{v:.0f}",
    )
    rows = [
        [
            source,
            "—" if auc is None else f"{auc:.3f}",
            t("passed" if status == "written" else "withheld", lang),
        ]
        for source, auc, status in r.validation
    ]
    return chart + _table([t(k, lang) for k in ("source", "auc", "verdict")], rows)


def _targets_html(r: Review, lang: str) -> str:
    """Expected wins per month with the interval and the target; the as-of month's targets;
    how far the backtested forecast missed, against the stage baseline."""
    money = lambda v: "–" if v is None else format_amount(v, r.currency, lang)  # noqa: E731
    parts = []
    if r.forecast:
        parts.append(
            hbar_chart(
                [str(m)[:7] for m, *_ in r.forecast],
                [
                    (t("expected", lang), [float(e or 0) for _, e, _, _, _ in r.forecast]),
                    (t("target", lang), [float(g or 0) for *_, g in r.forecast]),
                ],
                lambda v: format_amount(v, r.currency, lang),
            )
        )
        rows = [
            [str(m)[:7], money(e), f"{money(lo)} – {money(hi)}", money(g)]
            for m, e, lo, hi, g in r.forecast
        ]
        headers = [t(k, lang) for k in ("month", "expected", "interval", "target")]
        parts.append(_table(headers, rows))
    if r.attainment:
        rows = [
            [
                name,
                money(target),
                money(won),
                money(expected),
                "–" if share is None else f"{share:.0%}",
                money(gap),
            ]
            for name, target, won, expected, share, gap in r.attainment
        ]
        headers = [
            t(k, lang) for k in ("target_of", "target", "won", "expected", "attainment", "gap")
        ]
        parts.append(f"<h3>{escape(t('this_month', lang))}</h3>" + _table(headers, rows))
    else:
        parts.append(f"<p>{escape(t('no_targets', lang))}</p>")
    if r.accuracy:
        months, miss, baseline = r.accuracy
        parts.append(
            f"<p>{escape(t('backtest', lang).format(n=months, miss=money(miss), baseline=money(baseline)))}</p>"
        )
    return "".join(parts)


def _losses_html(r: Review, lang: str) -> str:
    if not r.losses:
        return f"<p>{escape(t('none', lang))}</p>"
    chart = hbar_chart(
        [loss_category(c, lang) for c, _, _ in r.losses],
        [(t("amount", lang), [float(a or 0) for _, _, a in r.losses])],
        lambda v: format_amount(v, r.currency, lang),
    )
    rows = [[loss_category(c, lang), n, format_amount(a, r.currency, lang)] for c, n, a in r.losses]
    return chart + _table([t("category", lang), t("n_deals", lang), t("amount", lang)], rows)


STYLE = """
@page { size: A4; margin: 14mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
       color: #1d2433; max-width: 180mm; margin: 0 auto; font-size: 13px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 16px; border-bottom: 2px solid #2f6fb0;
     padding-bottom: 3px; margin-top: 22px; break-after: avoid; } h3 { font-size: 13px; }
.meta { color: #5b6475; } .tiles { display: flex; flex-wrap: wrap; gap: 8px; }
.tile { border: 1px solid #d5dbe5; border-radius: 6px; padding: 6px 10px; min-width: 24mm; }
.tile .k { color: #5b6475; } .tile .v { font-size: 20px; font-weight: bold; } .tile .a { color: #2f6fb0; }
table { border-collapse: collapse; width: 100%; margin-top: 6px; break-inside: auto; }
th, td { border-bottom: 1px solid #e3e7ee; padding: 3px 6px; text-align: left; vertical-align: top; }
td { white-space: nowrap; } td:first-child, td:last-child { white-space: normal; }
th { background: #f2f5f9; } section { break-inside: avoid-page; } svg.chart { max-width: 100%; }
"""


def render_review(r: Review, lang: str) -> str:
    """The review as one HTML document (charts inline, nothing fetched)."""
    sunday = r.monday + timedelta(days=6)
    sections = [
        ("movement", _movement_html(r, lang)),
        ("follow_up", _follow_up_html(r, lang)),
        ("attention", _attention_html(r, lang)),
        ("grades", _grades_html(r, lang)),
        ("forecast", _targets_html(r, lang)),
        ("losses", _losses_html(r, lang)),
    ]
    body = "".join(
        f'<section id="{key}"><h2>{escape(t(key, lang))}</h2>{html}</section>'
        for key, html in sections
    )
    heading = f"{t('title', lang)} {r.week} ({r.monday} – {sunday})"
    meta = (
        f"{t('as_of', lang)} {r.as_of} · {t('timezone', lang)} {r.timezone} · "
        f"{datetime.now().astimezone().strftime('%Y-%m-%d %H:%M')}"
    )
    return (
        f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        f'<meta charset="utf-8"><title>{escape(heading)}</title><style>{STYLE}</style></head>'
        f'<body><h1>{escape(heading)}</h1><p class="meta">{escape(meta)}</p>{body}</body></html>'
    )


def headline(r: Review, lang: str) -> tuple[str, list[str]]:
    """The review's headline figures, for a chat message (`oppwh report weekly --send`)."""
    m, money = r.movement, lambda v: format_amount(v, r.currency, lang)
    title = f"{t('title', lang)} {r.week}"
    lines = [
        f"{t('created', lang)} {m['created'] or 0} ({money(m['created_amount'])})",
        f"{t('won', lang)} {m['won'] or 0} ({money(m['won_amount'])}) · "
        f"{t('lost', lang)} {m['lost'] or 0} ({money(m['lost_amount'])})",
        f"{t('open_end', lang)} {m['open_at_end'] or 0} ({money(m['open_amount_at_end'])})",
        f"{t('attention', lang)}: {r.attention_total}",
    ]
    return title, lines
