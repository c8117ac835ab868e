"""Chinese no-code CRM exports (简道云-style; 纷享销客 and 销售易 are alike).

Headers are each company's own form labels, so every canonical column lists the usual
labels and their synonyms. Exports carry only the current state: each load is also a
dated snapshot, and stage history grows from the changes between daily exports.
"""

from __future__ import annotations

from ingestion.formats.base import Field, Format, Output
from ingestion.schema import HEADCOUNT

SOURCE = "cn_crm"

_OPP_ID = ("商机编号", "商机ID", "商机id", "商机编码", "机会编号")
_ACCOUNT = ("客户编号", "客户ID", "客户id", "客户编码", "客户名称", "客户")
_OWNER = ("负责人", "销售负责人", "商机负责人", "所属销售", "销售", "负责销售")

OPPORTUNITIES = Format(
    name="cn_crm 商机",
    label="中文CRM 商机导出 / Chinese CRM opportunities",
    source_system=SOURCE,
    forbidden=("跟进方式", "跟进时间", "跟进内容", "跟进记录编号"),
    required=("opportunity_id", "created_at"),
    current_state=True,
    name_hints=("商机", "机会"),
    outputs=(
        Output(
            "opportunities",
            {
                "opportunity_id": Field(_OPP_ID),
                "opportunity_name": Field(("商机名称", "机会名称", "项目名称")),
                "account_id": Field(_ACCOUNT),
                "account_name": Field(("客户名称", "客户")),
                "industry": Field(("所属行业", "客户行业", "行业")),
                "owner_id": Field(_OWNER),
                "stage": Field(("销售阶段", "商机阶段", "阶段")),
                "status": Field(("商机状态", "赢单状态", "状态", "结果")),
                "amount": Field(("预计成交金额", "商机金额", "金额", "成交金额", "预计金额")),
                "probability": Field(("赢率", "赢单率", "赢单概率", "成交概率", "成交可能性")),
                "currency": Field(("币种", "货币")),
                "created_at": Field(("创建时间", "创建日期", "录入时间")),
                "closed_at": Field(
                    ("结单日期", "结单时间", "赢单日期", "输单日期", "成交日期", "关闭日期")
                ),
                "expected_close_date": Field(("预计成交日期", "预计签单日期", "预计结单日期")),
                "loss_reason": Field(("输单原因", "丢单原因", "失败原因")),
                "source": Field(("商机来源", "来源", "线索来源")),
                "is_deleted": Field(("是否删除", "已删除")),
            },
        ),
    ),
)

FOLLOW_UPS = Format(
    name="cn_crm 跟进记录",
    label="中文CRM 跟进记录 / Chinese CRM follow-up log",
    source_system=SOURCE,
    signature=(("跟进时间",), ("跟进日期",)),
    required=("occurred_at",),
    name_hints=("跟进",),
    outputs=(
        Output(
            "activities",
            {
                "activity_id": Field(
                    ("跟进记录编号", "跟进编号", "记录编号", "编号"), hash_fallback=True
                ),
                "opportunity_id": Field(("关联商机编号", "关联商机", "商机编号", "商机ID")),
                "account_id": Field(_ACCOUNT),
                "owner_id": Field(("跟进人", *_OWNER)),
                "activity_type": Field(("跟进方式", "跟进类型", "联系方式")),
                "occurred_at": Field(("跟进时间", "跟进日期")),
                "subject": Field(("跟进内容", "跟进主题", "内容")),
            },
        ),
    ),
)

ACCOUNTS = Format(
    name="cn_crm 客户",
    label="中文CRM 客户导出 / Chinese CRM accounts",
    source_system=SOURCE,
    signature=(
        ("客户名称", "所属行业"),
        ("客户名称", "客户级别"),
        ("客户名称", "人员规模"),
        ("客户名称", "客户规模"),
    ),
    forbidden=("销售阶段", "商机阶段", "商机编号", "跟进时间"),
    required=("account_id",),
    name_hints=("客户",),
    outputs=(
        Output(
            "accounts",
            {
                "account_id": Field(_ACCOUNT),
                "account_name": Field(("客户名称", "客户")),
                "industry": Field(("所属行业", "行业")),
                "employees": Field(
                    ("人员规模", "客户规模", "员工人数", "员工规模"), kind=HEADCOUNT
                ),
                "annual_revenue": Field(("年营业额", "年收入", "营业收入")),
                "region": Field(("所在地区", "地区", "省份", "城市", "区域")),
                "is_deleted": Field(("是否删除", "已删除")),
            },
        ),
    ),
)

CN_CRM_FORMATS = (OPPORTUNITIES, FOLLOW_UPS, ACCOUNTS)
