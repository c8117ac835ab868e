"""Posting the reminders: each chat's signature, its own way of saying "accepted", and one
deadline for the whole batch, so a slow or dead webhook never holds the run.

DingTalk signs in the URL (timestamp and HMAC-SHA256 of "timestamp\\nsecret", keyed with the
secret); Feishu in the body (timestamp and HMAC-SHA256 of nothing, keyed with
"timestamp\\nsecret"). WeCom and DingTalk answer `{"errcode": 0}`, Feishu `{"code": 0}`,
Slack the text `ok`; anything else is reported as not delivered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass

from ingestion.config import RemindersSection
from quality.notify import WebhookError, post_json
from reminders.messages import Message

# Each message within this many seconds (the whole batch within reminders.deadline_seconds).
MESSAGE_DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class Delivery:
    """What became of one owner's message."""

    owner: str
    delivered: bool
    detail: str


def _hmac_base64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with DingTalk's `timestamp` and `sign` query parameters."""
    sign = _hmac_base64(secret.encode(), f"{timestamp_ms}\n{secret}".encode())
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={urllib.parse.quote_plus(sign)}"


def feishu_signed(payload: dict, secret: str, timestamp_s: int) -> dict:
    """The payload with Feishu's `timestamp` and `sign` fields."""
    sign = _hmac_base64(f"{timestamp_s}\n{secret}".encode(), b"")
    return {"timestamp": str(timestamp_s), "sign": sign, **payload}


def signed(fmt: str, url: str, payload: dict, secret: str | None, now: float) -> tuple[str, dict]:
    """URL and payload as the chat wants them signed (unchanged without a secret)."""
    if not secret:
        return url, payload
    if fmt == "dingtalk":
        return dingtalk_signed_url(url, secret, int(now * 1000)), payload
    if fmt == "feishu":
        return url, feishu_signed(payload, secret, int(now))
    return url, payload


def accepted(fmt: str, body: str) -> tuple[bool, str]:
    """Whether the chat says it took the message, and its own words when not."""
    if fmt == "slack":
        return body.strip() == "ok", body.strip()[:200]
    try:
        answer = json.loads(body)
    except ValueError:
        return False, f"not a JSON answer: {body[:200]!r}"
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode")))
    return code == 0, json.dumps(answer, ensure_ascii=False)[:200]


def send_messages(
    messages: list[Message],
    settings: RemindersSection,
    message_deadline: float = MESSAGE_DEADLINE_SECONDS,
) -> list[Delivery]:
    """Post every message in turn to the settings' webhook, all of them within its
    `deadline_seconds`; never raises (a failed reminder is reported, it does not fail the run)."""
    fmt, url, secret = settings.format, settings.webhook, settings.secret
    started = time.monotonic()
    deliveries = []
    for message in messages:
        who = message.owner.who(settings.language)
        left = settings.deadline_seconds - (time.monotonic() - started)
        if left <= 0:
            deliveries.append(Delivery(who, False, "not sent: the batch deadline passed"))
            continue
        target, payload = signed(fmt, url, message.payload, secret, time.time())
        try:
            status, body = post_json(target, payload, min(message_deadline, left))
        except WebhookError as exc:
            deliveries.append(Delivery(who, False, str(exc)))
            continue
        ok, said = accepted(fmt, body)
        deliveries.append(Delivery(who, ok, f"HTTP {status}" if ok else f"refused: {said}"))
    return deliveries
