"""A deterministic, realistic synthetic export in the native format (canonical CSVs).

It exists so a new user sees the warehouse work before wiring their CRM, and so tests
have data with known truth: the same seed and as-of date give the same bytes. Deals move
through 初步接触 → 需求确认 → 方案报价 → 商务谈判 → 赢单/输单, some slip back a stage,
some are lost without a reason, some open deals go stale, activities come in the types
sales teams log (电话, 拜访, 微信, 邮件, 会议). Win chances depend on industry and on how
often a deal is followed up, so priority grades have a real signal to find; one rep
hoards deals and seldom wins them.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

DEFAULT_AS_OF = date(2025, 6, 30)
DEFAULT_OPPORTUNITIES = 400
DEFAULT_SEED = 7

STAGES = ["初步接触", "需求确认", "方案报价", "商务谈判"]
WON, LOST = "赢单", "输单"
INDUSTRIES = {  # industry -> base win chance
    "制造业": 0.55,
    "金融": 0.45,
    "互联网": 0.35,
    "零售": 0.30,
    "医疗": 0.50,
    "教育": 0.25,
    "物流": 0.40,
}
REGIONS = ["华东", "华北", "华南", "西南", "华中"]
TEAMS = ["华东一组", "华北一组", "华南一组"]
SOURCES = ["官网", "展会", "转介绍", "电话营销", "合作伙伴"]
LOSS_REASONS = [
    "价格太高",
    "选择了竞争对手",
    "预算不足",
    "客户无回应",
    "需求取消",
    "产品功能不匹配",
    "时机不对",
    "Price too high",
    "Lost to competitor",
]
PRODUCTS = ["ERP", "CRM", "数据平台", "年度服务", "设备采购"]
ACTIVITY_TYPES = ["电话", "电话", "微信", "微信", "拜访", "邮件", "会议"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "涛",
    "明",
    "超",
    "平",
]
COMPANY_WORDS = [
    "华信",
    "恒达",
    "新峰",
    "宏远",
    "东方",
    "长城",
    "金桥",
    "瑞丰",
    "天成",
    "博远",
    "嘉禾",
    "远航",
]
COMPANY_SUFFIX = ["科技有限公司", "制造有限公司", "集团", "贸易有限公司", "股份有限公司"]

FILES = {
    "owners": ["owner_id", "owner_name", "team", "manager_id"],
    "accounts": ["account_id", "account_name", "industry", "employees", "annual_revenue", "region"],
    "opportunities": [
        "opportunity_id",
        "opportunity_name",
        "account_id",
        "owner_id",
        "stage",
        "status",
        "amount",
        "currency",
        "created_at",
        "closed_at",
        "expected_close_date",
        "loss_reason",
        "source",
        "is_deleted",
    ],
    "stage_history": ["opportunity_id", "stage", "entered_at"],
    "activities": [
        "activity_id",
        "opportunity_id",
        "account_id",
        "owner_id",
        "activity_type",
        "occurred_at",
        "duration_seconds",
        "subject",
    ],
    "targets": ["owner_id", "team", "month", "target_amount"],
}


@dataclass
class SampleData:
    owners: list[dict]
    accounts: list[dict]
    opportunities: list[dict]
    stage_history: list[dict]
    activities: list[dict]
    targets: list[dict] = field(default_factory=list)


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _work_time(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, time(9)) + timedelta(minutes=rng.randrange(0, 9 * 60))


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def make_owners(rng: random.Random) -> list[dict]:
    owners = []
    for t, team in enumerate(TEAMS):
        manager = f"U{t + 1:03d}"
        owners.append(
            {"owner_id": manager, "owner_name": _person(rng), "team": team, "manager_id": ""}
        )
        for r in range(4):
            owners.append(
                {
                    "owner_id": f"U{10 + t * 4 + r:03d}",
                    "owner_name": _person(rng),
                    "team": team,
                    "manager_id": manager,
                }
            )
    return owners


def make_accounts(rng: random.Random, count: int) -> list[dict]:
    accounts = []
    for i in range(count):
        employees = rng.choice([20, 50, 120, 300, 800, 2000, 5000, 12000])
        accounts.append(
            {
                "account_id": f"A{i + 1:05d}",
                "account_name": rng.choice(COMPANY_WORDS)
                + rng.choice(COMPANY_WORDS)
                + rng.choice(COMPANY_SUFFIX),
                "industry": rng.choice(list(INDUSTRIES)),
                "employees": str(employees),
                "annual_revenue": str(employees * rng.randrange(20, 80) * 10000),
                "region": rng.choice(REGIONS),
            }
        )
    return accounts


def _deal(rng, i, as_of, accounts, reps, data: SampleData) -> None:
    account = rng.choice(accounts)
    # The first rep hoards deals (about three times the others') and rarely wins them:
    # the "chasing twice the average at a low win rate" pattern managers must see.
    owner = reps[0] if rng.random() < 0.2 else rng.choice(reps)
    hoarder = owner is reps[0]
    created_day = as_of - timedelta(days=rng.randrange(5, 360))
    created = _work_time(rng, created_day)
    touch_rate = rng.choice([0.05, 0.12, 0.25, 0.4])  # touches per day while open
    win_chance = INDUSTRIES[account["industry"]] * (0.6 + touch_rate * 2)
    if hoarder:
        touch_rate, win_chance = touch_rate / 3, win_chance / 5
    amount = rng.choice([3, 5, 8, 12, 20, 35, 60, 120]) * 10000 + rng.randrange(0, 100) * 100
    opp_id = f"OPP-{i + 1:05d}"

    # Walk the stages: each stage lasts a while; the deal may close (won/lost) or stall.
    history: list[tuple[str, datetime]] = []
    moment, stage_index = created, 0
    final_stage = rng.choice([1, 2, 3, 4, 4])  # how far it gets before closing
    closes = rng.random() < (0.4 if hoarder else 0.75)
    regressed = False
    while True:
        history.append((STAGES[stage_index], moment))
        moment = moment + timedelta(days=rng.randrange(3, 40), hours=rng.randrange(0, 8))
        if moment.date() > as_of:
            closes = False
            break
        if not regressed and stage_index >= 2 and rng.random() < 0.08:
            regressed = True
            stage_index -= 1
            continue
        if stage_index + 1 >= final_stage:
            break
        stage_index += 1
    status, stage, closed_at, loss_reason = "进行中", history[-1][0], None, ""
    if closes and moment.date() <= as_of:
        won = rng.random() < min(win_chance * (0.6 + 0.15 * stage_index), 0.95)
        status, stage = ("赢单", WON) if won else ("输单", LOST)
        closed_at = moment
        history.append((stage, closed_at))
        if not won and rng.random() < 0.6:
            loss_reason = rng.choice(LOSS_REASONS)
    end = closed_at or datetime.combine(as_of, time(18))
    if status == "进行中" and rng.random() < 0.3:
        end = end - timedelta(days=rng.randrange(20, 60))  # stale: nobody called for weeks

    data.opportunities.append(
        {
            "opportunity_id": opp_id,
            "opportunity_name": f"{account['account_name']}-{rng.choice(PRODUCTS)}",
            "account_id": account["account_id"],
            "owner_id": owner["owner_id"],
            "stage": stage,
            "status": status,
            "amount": f"{amount:.2f}",
            "currency": "CNY",
            "created_at": _ts(created),
            "closed_at": _ts(closed_at) if closed_at else "",
            "expected_close_date": (
                created_day + timedelta(days=rng.randrange(30, 150))
            ).isoformat(),
            "loss_reason": loss_reason,
            "source": rng.choice(SOURCES),
            "is_deleted": "true" if rng.random() < 0.01 else "false",
        }
    )
    for stage_name, entered in history:
        data.stage_history.append(
            {"opportunity_id": opp_id, "stage": stage_name, "entered_at": _ts(entered)}
        )
    day = created.date()
    while day <= end.date():
        if rng.random() < touch_rate:
            kind = rng.choice(ACTIVITY_TYPES)
            data.activities.append(
                {
                    "activity_id": "",
                    "opportunity_id": opp_id,
                    "account_id": account["account_id"],
                    "owner_id": owner["owner_id"],
                    "activity_type": kind,
                    "occurred_at": _ts(max(_work_time(rng, day), created + timedelta(minutes=30))),
                    "duration_seconds": str(rng.randrange(60, 3600))
                    if kind in ("电话", "会议")
                    else "",
                    "subject": f"{kind}跟进",
                }
            )
        day += timedelta(days=1)


def generate_sample(
    opportunities: int = DEFAULT_OPPORTUNITIES,
    seed: int = DEFAULT_SEED,
    as_of: date = DEFAULT_AS_OF,
) -> SampleData:
    """Build the sample in memory; every random choice comes from one seeded generator."""
    rng = random.Random(seed)
    owners = make_owners(rng)
    reps = [o for o in owners if o["manager_id"]]
    accounts = make_accounts(rng, max(10, opportunities // 3))
    data = SampleData(owners, accounts, [], [], [])
    for i in range(opportunities):
        _deal(rng, i, as_of, accounts, reps, data)
    # Account-level touches that belong to no deal: they must not count for any opportunity.
    for _ in range(max(5, opportunities // 20)):
        account = rng.choice(accounts)
        data.activities.append(
            {
                "activity_id": "",
                "opportunity_id": "",
                "account_id": account["account_id"],
                "owner_id": rng.choice(reps)["owner_id"],
                "activity_type": "电话",
                "occurred_at": _ts(_work_time(rng, as_of - timedelta(days=rng.randrange(1, 200)))),
                "duration_seconds": "120",
                "subject": "客户回访",
            }
        )
    data.activities.sort(key=lambda a: a["occurred_at"])
    for n, activity in enumerate(data.activities, start=1):
        activity["activity_id"] = f"ACT-{n:07d}"
    data.targets = make_targets(data, as_of)
    return data


def make_targets(data: SampleData, as_of: date) -> list[dict]:
    """Monthly targets for each rep and team, from six months before the as-of month to
    two after it: a little above what the rep won in an average month (no random draw,
    so the rest of the sample is the same with or without them)."""
    first = as_of.replace(day=1)
    months = []
    month = first
    for _ in range(6):
        month = (month - timedelta(days=1)).replace(day=1)
        months.insert(0, month)
    month = first
    for _ in range(3):
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    won: dict[str, float] = {}
    won_months = set()
    for deal in data.opportunities:
        if deal["status"] == "赢单" and deal["amount"] and deal["closed_at"]:
            won[deal["owner_id"]] = won.get(deal["owner_id"], 0.0) + float(deal["amount"])
            won_months.add(deal["closed_at"][:7])
    span_months = max(1, len(won_months))
    targets = []
    teams: dict[str, float] = {}
    for owner in data.owners:
        if not owner["manager_id"]:
            continue
        monthly = round(won.get(owner["owner_id"], 0.0) / span_months * 1.2, -4) or 100000.0
        teams[owner["team"]] = teams.get(owner["team"], 0.0) + monthly
        for m in months:
            targets.append(
                {
                    "owner_id": owner["owner_id"],
                    "team": "",
                    "month": m.strftime("%Y-%m"),
                    "target_amount": f"{monthly:.0f}",
                }
            )
    for team, monthly in sorted(teams.items()):
        for m in months:
            targets.append(
                {
                    "owner_id": "",
                    "team": team,
                    "month": m.strftime("%Y-%m"),
                    "target_amount": f"{monthly:.0f}",
                }
            )
    return targets


def write_sample(out_dir: Path, data: SampleData) -> list[Path]:
    """Write one UTF-8 CSV per canonical table; fixed line endings so bytes are stable."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, columns in FILES.items():
        path = out_dir / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(getattr(data, name))
        written.append(path)
    return written
