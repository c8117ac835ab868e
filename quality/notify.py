"""Tell someone when an unattended run fails or is blocked: a short webhook message.

Formats: 企业微信 (WeCom) and 钉钉 (DingTalk) group robots, Slack incoming webhooks, and a
generic JSON body for anything else.
"""

from __future__ import annotations

import json
import urllib.request


def build_payload(fmt: str, title: str, text: str, run_id: str | None = None) -> dict:
    body = f"{title}\n{text}"
    if fmt in ("wecom", "dingtalk"):
        return {"msgtype": "text", "text": {"content": body}}
    if fmt == "slack":
        return {"text": body}
    return {"event": "oppwh.run_failed", "title": title, "message": text, "run_id": run_id}


def post_webhook(url: str, payload: dict, timeout: float = 10.0) -> int:
    """POST the JSON payload; returns the HTTP status (raises on network errors)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - user's URL
        return response.status


def failure_message(step: str, error: str, data_dir: str) -> tuple[str, str]:
    title = "商机数仓每日任务失败 / Opportunity warehouse daily run failed"
    first = error.strip().splitlines()[0][:500] if error.strip() else "unknown error"
    text = f"step / 步骤: {step}\nerror / 原因: {first}\n详情 / details: oppwh quality --data-dir {data_dir}"
    return title, text
