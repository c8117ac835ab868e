"""Tell someone when an unattended run fails or is blocked: a short webhook message.

Formats: 企业微信 (WeCom) and 钉钉 (DingTalk) group robots, Slack incoming webhooks, and a
generic JSON body for anything else.

A message is sent after the run has ended and released the writer lock, and within an
overall deadline: a webhook that answers one byte at a time (a per-read timeout never
fires) is cut off when the deadline passes, so it can hold neither the run nor the lock.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import urllib.parse

# The longest a notification may take, connecting and answering included.
DEADLINE_SECONDS = 5.0


class WebhookError(OSError):
    """The webhook could not be reached, refused the message or missed the deadline."""


def build_payload(fmt: str, title: str, text: str, run_id: str | None = None) -> dict:
    body = f"{title}\n{text}"
    if fmt in ("wecom", "dingtalk"):
        return {"msgtype": "text", "text": {"content": body}}
    if fmt == "slack":
        return {"text": body}
    return {"event": "oppwh.run_failed", "title": title, "message": text, "run_id": run_id}


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"webhook URL must be http(s)://host/...: {url[:80]!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return kind(parts.hostname, parts.port, timeout=timeout), target


def post_webhook(url: str, payload: dict, deadline: float = DEADLINE_SECONDS) -> int:
    """POST the JSON payload and return the HTTP status, all within `deadline` seconds.

    Raises WebhookError on a network error, an error status or a missed deadline."""
    return post_json(url, payload, deadline)[0]


def post_json(url: str, payload: dict, deadline: float = DEADLINE_SECONDS) -> tuple[int, str]:
    """POST the JSON payload within `deadline` seconds: the HTTP status and the start of
    the answer (team chats answer 200 with their own error code in the body)."""
    connection, target = _connection(url, deadline)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    outcome: dict = {}

    def send() -> None:
        try:
            connection.request(
                "POST", target, body, {"Content-Type": "application/json; charset=utf-8"}
            )
            response = connection.getresponse()
            outcome["body"] = response.read(1 << 16).decode("utf-8", "replace")
            outcome["status"] = response.status
        except Exception as exc:  # reported to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=send, name="oppwh-webhook", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        # Shut the socket so the worker's blocked read ends now, not at the server's pace.
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        connection.close()
        raise WebhookError(f"the webhook did not answer within {deadline:g} s")
    connection.close()
    if "error" in outcome:
        raise WebhookError(str(outcome["error"])) from outcome["error"]
    if outcome["status"] >= 400:
        raise WebhookError(f"the webhook answered HTTP {outcome['status']}")
    return outcome["status"], outcome["body"]


def failure_message(step: str, error: str, data_dir: str) -> tuple[str, str]:
    title = "商机数仓每日任务失败 / Opportunity warehouse daily run failed"
    first = error.strip().splitlines()[0][:500] if error.strip() else "unknown error"
    text = f"step / 步骤: {step}\nerror / 原因: {first}\n详情 / details: oppwh quality --data-dir {data_dir}"
    return title, text


def notify_failure(
    url: str | None, fmt: str, step: str, error: str, data_dir: str, run_id: str | None
) -> str:
    """Post a failed run to the team's webhook (when one is set); returns what happened,
    for the log. Never raises: a dead webhook must not hide the real failure."""
    if not url:
        return "no webhook set"
    title, text = failure_message(step, error, data_dir)
    try:
        status = post_webhook(url, build_payload(fmt, title, text, run_id))
    except WebhookError as exc:
        return f"could not post the failure to the webhook: {exc}"
    return f"failure posted to webhook ({status})"
