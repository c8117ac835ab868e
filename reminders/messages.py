"""Each owner's action items as one team-chat message, in that chat's own payload.

WeCom (企业微信) and DingTalk (钉钉) group robots take markdown, Feishu (飞书) a post, Slack
blocks. Every message names its owner and, most important first (grade, then amount), each
deal's name and CRM id with its reasons; what does not fit the chat's size limit (or the
`max_deals` setting) is summed up as "and N more". Only owner and deal names, ids, grades,
amounts and the reasons go out: the deal names come from the serving copy, where e-mail
addresses and phone numbers are already masked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from warehouse.display import format_amount

# What each chat accepts (bytes of UTF-8 unless said otherwise), with a little room.
WECOM_MARKDOWN_BYTES = 4096  # markdown.content
DINGTALK_MARKDOWN_BYTES = 20000  # markdown.text
FEISHU_BODY_BYTES = 20 * 1024  # the whole request body
SLACK_SECTION_CHARS = 3000  # one section block's text
SLACK_HEADER_CHARS = 150
FORMATS = ("wecom", "dingtalk", "feishu", "slack")
UNASSIGNED = {"zh": "未分配负责人", "en": "no owner"}


@dataclass(frozen=True)
class Deal:
    """One deal of an owner's list, with every reason it needs action today."""

    opportunity_id: str
    opportunity_name: str | None
    grade: str | None
    amount: float | None
    currency: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class OwnerItems:
    source_system: str
    owner_id: str | None
    owner_name: str | None
    deals: tuple[Deal, ...]

    def who(self, lang: str) -> str:
        return self.owner_name or self.owner_id or UNASSIGNED[lang]


@dataclass(frozen=True)
class Message:
    owner: OwnerItems
    payload: dict
    deals_shown: int

    @property
    def deals_left_out(self) -> int:
        return len(self.owner.deals) - self.deals_shown


def owners_with_items(rows: Iterable[dict], lang: str) -> list[OwnerItems]:
    """marts.action_items rows (in its order: owner, grade, amount) grouped per owner and
    deal, each deal with its reasons in `lang`."""
    owners: dict[tuple, dict[str, dict]] = {}
    names: dict[tuple, str | None] = {}
    for row in rows:
        owner = (row["source_system"], row["owner_id"])
        names[owner] = row["owner_name"]
        deal = owners.setdefault(owner, {}).setdefault(
            row["opportunity_id"], {"row": row, "reasons": []}
        )
        deal["reasons"].append(row["text_zh" if lang == "zh" else "text_en"])
    return [
        OwnerItems(
            source,
            owner_id,
            names[(source, owner_id)],
            tuple(
                Deal(
                    d["row"]["opportunity_id"],
                    d["row"]["opportunity_name"],
                    d["row"]["grade"],
                    d["row"]["amount"],
                    d["row"]["currency"],
                    tuple(d["reasons"]),
                )
                for d in deals.values()
            ),
        )
        for (source, owner_id), deals in owners.items()
    ]


def one_line(text: str | None) -> str:
    """A value on one line, without the characters chat markdown would read as markup."""
    return " ".join(str(text or "").split()).replace("<", "‹").replace(">", "›")


def title(owner: OwnerItems, as_of: str, lang: str) -> str:
    n = len(owner.deals)
    if lang == "zh":
        return f"商机待办 {as_of}：{one_line(owner.who(lang))}（{n}个商机）"
    return f"Deals to act on {as_of}: {one_line(owner.who(lang))} ({n} deal{'s' * (n != 1)})"


def deal_line(deal: Deal, lang: str) -> str:
    grade = deal.grade or "–"
    name = one_line(deal.opportunity_name) or deal.opportunity_id
    # a deal exported without an amount shows none (not a dash before the colon)
    amount = "" if deal.amount is None else format_amount(deal.amount, deal.currency, lang)
    reasons = ("；" if lang == "zh" else "; ").join(deal.reasons)
    if lang == "zh":
        return f"[{grade}] {name}（{one_line(deal.opportunity_id)}）{amount}：{reasons}"
    return f"[{grade}] {name} ({one_line(deal.opportunity_id)}){f' {amount}' if amount else ''}: {reasons}"


def more_line(left_out: int, lang: str) -> str:
    if lang == "zh":
        return f"……另有{left_out}个商机（见 marts.action_items）"
    return f"…and {left_out} more (see marts.action_items)"


def render(fmt: str, heading: str, lines: list[str], lang: str) -> dict:
    """The chat's own payload for a title and its lines."""
    if fmt == "wecom":
        body = "\n".join(f"> {line}" for line in lines)
        return {"msgtype": "markdown", "markdown": {"content": f"### {heading}\n{body}"}}
    if fmt == "dingtalk":
        body = "\n".join(f"- {line}" for line in lines)
        return {
            "msgtype": "markdown",
            "markdown": {"title": heading, "text": f"### {heading}\n\n{body}"},
        }
    if fmt == "feishu":
        content = [[{"tag": "text", "text": line}] for line in lines]
        locale = "zh_cn" if lang == "zh" else "en_us"
        return {
            "msg_type": "post",
            "content": {"post": {locale: {"title": heading, "content": content}}},
        }
    if fmt == "slack":
        section = "\n".join(f"• {line}" for line in lines)
        return {
            "text": heading,
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": heading[:SLACK_HEADER_CHARS]},
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            ],
        }
    raise ValueError(f"unknown chat format {fmt!r} (one of {', '.join(FORMATS)})")


def fits(fmt: str, payload: dict) -> bool:
    """Whether the payload is within the chat's size limit."""
    if fmt == "wecom":
        return len(payload["markdown"]["content"].encode()) <= WECOM_MARKDOWN_BYTES
    if fmt == "dingtalk":
        return len(payload["markdown"]["text"].encode()) <= DINGTALK_MARKDOWN_BYTES
    if fmt == "feishu":
        # room for the signature fields added when sending
        return len(json.dumps(payload, ensure_ascii=False).encode()) <= FEISHU_BODY_BYTES - 200
    return len(payload["blocks"][1]["text"]["text"]) <= SLACK_SECTION_CHARS


def owner_message(owner: OwnerItems, fmt: str, lang: str, as_of: str, max_deals: int) -> Message:
    """The owner's message with as many of their deals, most important first, as the chat
    and `max_deals` allow; the rest counted in a last line."""
    heading = title(owner, as_of, lang)
    lines = [deal_line(deal, lang) for deal in owner.deals]
    for shown in range(min(max_deals, len(lines)), -1, -1):
        left_out = len(lines) - shown
        body = lines[:shown] + ([more_line(left_out, lang)] if left_out else [])
        payload = render(fmt, heading, body, lang)
        if fits(fmt, payload):
            return Message(owner, payload, shown)
    # Not even the title fits: say only how many deals are waiting.
    return Message(owner, render(fmt, heading[:100], [more_line(len(lines), lang)], lang), 0)


def messages_for(
    rows: Iterable[dict], fmt: str, lang: str, as_of: str, max_deals: int = 10
) -> list[Message]:
    """One message per owner with items."""
    return [
        owner_message(owner, fmt, lang, as_of, max_deals) for owner in owners_with_items(rows, lang)
    ]


def as_text(message: Message) -> str:
    """A message as the chat would show it, for `oppwh remind --dry-run`."""
    return json.dumps(message.payload, ensure_ascii=False, indent=2)
