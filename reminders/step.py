"""The reminders as steps: today's action items after the grades (a step of the daily job),
and the team-chat messages after a successful run (`oppwh run`, `oppwh remind`, and the
run-success sensor for runs the Dagster daemon starts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from ingestion.config import RemindersSection, read_config
from reminders.items import ITEM_ORDER_SQL, build_action_items
from reminders.messages import Message, OwnerItems, messages_for, render
from reminders.send import Delivery, send_messages
from reminders.weekly import Review, headline
from warehouse.database import Database, connect
from warehouse.layout import DataFolder


def refresh_action_items(db: Database, as_of: date, stale_days: int) -> int:
    """marts.action_items for `as_of`; its row count."""
    with db.connect() as con:
        return build_action_items(con, as_of, stale_days)


def published_items(serving: Path) -> tuple[str, list[dict]]:
    """The serving copy's as-of day and action items (deal names masked there)."""
    with connect(serving, read_only=True) as con:
        as_of = str(con.execute("SELECT as_of FROM main.publication").fetchone()[0])
        cursor = con.execute(f"SELECT * FROM marts.action_items ORDER BY {ITEM_ORDER_SQL}")
        names = [c[0] for c in cursor.description]
        return as_of, [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Reminders:
    """The messages of the latest published run, and where they go."""

    settings: RemindersSection
    as_of: str
    messages: list[Message]

    @property
    def configured(self) -> bool:
        return bool(self.settings.webhook)


def reminder_settings(data_dir: Path, lang: str | None = None) -> RemindersSection:
    """oppwh.yml's `reminders:` (the defaults when it has none); `lang` overrides its language."""
    settings = read_config(data_dir).reminders or RemindersSection()
    return settings.model_copy(update={"language": lang}) if lang else settings


def prepare_reminders(data_dir: Path, lang: str | None = None) -> Reminders:
    """Each owner's message from the published action items, in the configured chat's
    format and language (`lang` overrides the language)."""
    settings = reminder_settings(data_dir, lang)
    as_of, rows = published_items(DataFolder.at(data_dir).serving)
    messages = messages_for(rows, settings.format, settings.language, as_of, settings.max_deals)
    return Reminders(settings, as_of, messages)


def send_reminders(reminders: Reminders) -> list[Delivery]:
    return send_messages(reminders.messages, reminders.settings)


def post_run_reminders(data_dir: Path) -> str:
    """After a successful run: send the reminders when a webhook is set; one line saying
    what happened. Never raises: a reminder that cannot go out must not fail the run."""
    try:
        if not reminder_settings(data_dir).webhook:
            return ""  # no chat: the published items are not even read
        deliveries = send_reminders(prepare_reminders(data_dir))
    except (OSError, ValueError, duckdb.Error) as exc:  # the run succeeded: say why none went
        return f"reminders not sent / 提醒未发送: {type(exc).__name__}: {exc}"
    return delivery_summary(deliveries)


def delivery_summary(deliveries: list[Delivery]) -> str:
    sent = sum(d.delivered for d in deliveries)
    failed = [f"{d.owner}: {d.detail}" for d in deliveries if not d.delivered]
    line = f"reminders / 提醒: {sent} of {len(deliveries)} sent"
    return line + (f"; not delivered: {'; '.join(failed[:5])}" if failed else "")


def send_review_headline(data_dir: Path, review: Review, lang: str) -> Delivery | None:
    """The weekly review's headline figures as one chat message (None: no webhook set)."""
    settings = reminder_settings(data_dir, lang)
    if not settings.webhook:
        return None
    heading, lines = headline(review, lang)
    payload = render(settings.format, heading, lines, lang)
    message = Message(OwnerItems("", None, heading, ()), payload, 0)
    return send_messages([message], settings)[0]
