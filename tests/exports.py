"""Small exports in each source's own spelling and quirks, written by the tests themselves."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook


def write_csv(path: Path, header: list[str], rows: list[list], encoding="utf-8", bom=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        if bom:
            handle.write("\ufeff")
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def row(cells: str) -> list[str]:
    """One exported row written on one line, its cells separated by `|` (no cell here holds
    one): the table reads like the file it stands for."""
    return cells.split("|")


def write_xlsx(path: Path, sheets: dict[str, tuple[list[str], list[list]]]):
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.remove(book.active)
    for name, (header, rows) in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


# --- Salesforce: data export with history and activities ------------------------------

# The native format's opportunity columns a hand-written test export uses.
NATIVE_OPPORTUNITY_HEADER = [
    "opportunity_id",
    "opportunity_name",
    "owner_id",
    "stage",
    "status",
    "amount",
    "created_at",
    "closed_at",
    "loss_reason",
    "account_id",
]
SF_OPPORTUNITY = [
    "Id",
    "IsDeleted",
    "AccountId",
    "Name",
    "StageName",
    "Amount",
    "Probability",
    "CloseDate",
    "LeadSource",
    "IsClosed",
    "IsWon",
    "OwnerId",
    "CreatedDate",
    "Loss_Reason__c",
    "External_id__c",
]
SF_HISTORY = [
    "Id",
    "OpportunityId",
    "StageName",
    "Amount",
    "CloseDate",
    "Probability",
    "CreatedById",
    "CreatedDate",
    "IsDeleted",
    "PrevAmount",
]
SF_TASK = [
    "Id",
    "WhoId",
    "WhatId",
    "Subject",
    "ActivityDate",
    "Status",
    "Priority",
    "OwnerId",
    "IsDeleted",
    "AccountId",
    "IsClosed",
    "CreatedDate",
    "CallDurationInSeconds",
    "TaskSubtype",
]
SF_EVENT = [
    "Id",
    "WhoId",
    "WhatId",
    "Subject",
    "ActivityDate",
    "StartDateTime",
    "EndDateTime",
    "DurationInMinutes",
    "OwnerId",
    "AccountId",
    "IsDeleted",
    "CreatedDate",
    "EventSubtype",
]
SF_ACCOUNT = [
    "Id",
    "IsDeleted",
    "MasterRecordId",
    "Name",
    "Industry",
    "AnnualRevenue",
    "NumberOfEmployees",
    "BillingCountry",
    "CreatedDate",
]
SF_USER = ["Id", "Name", "Username", "IsActive", "ManagerId", "Department"]


def sf_ts(text: str) -> str:
    return f"{text}.000+0000"


def write_salesforce(folder: Path) -> Path:
    """Five deals: A won after a regression, B lost for price, C lost without a reason,
    D open, E deleted. Booleans as 1/blank, BOM, UTC timestamps."""
    write_csv(
        folder / "Opportunity.csv",
        SF_OPPORTUNITY,
        [
            row(
                f"006A00000000001AAA||001A00000000001AAA|Acme - Platform|Closed Won|50000|100|2025-02-15|Web|1|1|005A00000000001AAA|{sf_ts('2025-01-02T02:00:00')}||ext-1"
            ),
            row(
                f"006A00000000002AAA||001A00000000002AAA|Globex - Renewal|Closed Lost|20000|0|2025-03-01|Partner|1||005A00000000002AAA|{sf_ts('2025-01-05T02:00:00')}|Price too high|ext-2"
            ),
            row(
                f"006A00000000003AAA||001A00000000003AAA|Initech - Pilot|Closed Lost|8000|0|2025-02-20|Web|1||005A00000000002AAA|{sf_ts('2025-01-06T02:00:00')}||ext-3"
            ),
            row(
                f"006A00000000004AAA||001A00000000001AAA|Acme - Expansion|Negotiation/Review|30000|75|2025-07-30|Web|||005A00000000001AAA|{sf_ts('2025-05-01T02:00:00')}||ext-4"
            ),
            row(
                f"006A00000000005AAA|1|001A00000000002AAA|Deleted deal|Closed Won|99000|100|2025-03-01|Web|1|1|005A00000000001AAA|{sf_ts('2025-01-03T02:00:00')}||ext-5"
            ),
        ],
        bom=True,
    )
    h = "006A00000000001AAA"
    write_csv(
        folder / "OpportunityHistory.csv",
        SF_HISTORY,
        [
            row(f"008A1|{h}|Prospecting|40000|2025-03-01|10|005A|{sf_ts('2025-01-02T02:00:00')}||"),
            row(
                f"008A2|{h}|Qualification|40000|2025-03-01|20|005A|{sf_ts('2025-01-10T02:00:00')}||"
            ),
            # amount-only change: same stage, not a new visit
            row(
                f"008A3|{h}|Qualification|50000|2025-03-01|20|005A|{sf_ts('2025-01-12T02:00:00')}||40000"
            ),
            row(
                f"008A4|{h}|Proposal/Price Quote|50000|2025-03-01|70|005A|{sf_ts('2025-01-20T02:00:00')}||"
            ),
            row(
                f"008A5|{h}|Qualification|50000|2025-03-01|20|005A|{sf_ts('2025-01-25T02:00:00')}||"
            ),
            row(
                f"008A6|{h}|Negotiation/Review|50000|2025-02-15|90|005A|{sf_ts('2025-02-01T02:00:00')}||"
            ),
            row(f"008A7|{h}|Closed Won|50000|2025-02-15|100|005A|{sf_ts('2025-02-15T03:00:00')}||"),
            row(
                f"008D1|006A00000000004AAA|Prospecting|30000|2025-07-30|10|005A|{sf_ts('2025-05-01T02:00:00')}||"
            ),
            row(
                f"008D2|006A00000000004AAA|Negotiation/Review|30000|2025-07-30|90|005A|{sf_ts('2025-06-01T02:00:00')}||"
            ),
            row(
                f"008D3|006A00000000004AAA|Closed Lost|30000|2025-07-30|0|005A|{sf_ts('2025-06-02T02:00:00')}|1|"
            ),
            row(
                f"008E1|006A00000000005AAA|Prospecting|99000|2025-03-01|10|005A|{sf_ts('2025-01-03T02:00:00')}||"
            ),
        ],
    )
    write_csv(
        folder / "Task.csv",
        SF_TASK,
        [
            row(
                f"00T1|003X|{h}|Call|2025-01-15|Completed|Normal|005A||001A00000000001AAA|1|{sf_ts('2025-01-15T03:00:00')}|300|Call"
            ),
            row(
                f"00T2|003X|{h}|Email|2025-01-22|Completed|Normal|005A||001A00000000001AAA|1|{sf_ts('2025-01-22T03:00:00')}||Email"
            ),
            row(
                f"00T3|003X|{h}|Follow up|2025-02-05|Completed|Normal|005A||001A00000000001AAA|1|{sf_ts('2025-02-05T03:00:00')}||Task"
            ),
            row(
                f"00T4|003X|{h}|Deleted call|2025-02-06|Completed|Normal|005A|1|001A00000000001AAA|1|{sf_ts('2025-02-06T03:00:00')}||Call"
            ),
            row(
                f"00T5|003X|006A00000000004AAA|Call|2025-06-20|Completed|Normal|005A||001A00000000001AAA|1|{sf_ts('2025-06-20T03:00:00')}|120|Call"
            ),
            row(
                f"00T6|003X|006A00000000004AAA|Email|2025-06-25|Completed|Normal|005A||001A00000000001AAA|1|{sf_ts('2025-06-25T03:00:00')}||Email"
            ),
            # account-level tasks (WhatId is an Account): belong to no opportunity
            row(
                f"00T7|003X|001A00000000001AAA|QBR|2025-06-26|Completed|Normal|005A||001A00000000001AAA|1|{sf_ts('2025-06-26T03:00:00')}||Task"
            ),
            row(
                f"00T8|003X||Intro|2025-06-27|Completed|Normal|005A||001A00000000002AAA|1|{sf_ts('2025-06-27T03:00:00')}||Task"
            ),
            # under the deleted opportunity
            row(
                f"00T9|003X|006A00000000005AAA|Call|2025-02-01|Completed|Normal|005A||001A00000000002AAA|1|{sf_ts('2025-02-01T03:00:00')}||Call"
            ),
        ],
    )
    write_csv(
        folder / "Event.csv",
        SF_EVENT,
        [
            row(
                f"00U1|003X|{h}|Onsite demo|2025-01-28|{sf_ts('2025-01-28T06:00:00')}|{sf_ts('2025-01-28T07:00:00')}|60|005A|001A00000000001AAA||{sf_ts('2025-01-20T03:00:00')}|Event"
            ),
        ],
    )
    write_csv(
        folder / "Account.csv",
        SF_ACCOUNT,
        [
            row(
                f"001A00000000001AAA|||Acme|Manufacturing|5000000|1200|China|{sf_ts('2024-01-01T00:00:00')}"
            ),
            row(f"001A00000000002AAA|||Globex|Finance||80|China|{sf_ts('2024-01-01T00:00:00')}"),
            row(f"001A00000000003AAA|||Initech|Retail||300|China|{sf_ts('2024-01-01T00:00:00')}"),
            # merged into Acme: counted once
            row(
                f"001A00000000009AAA|1|001A00000000001AAA|ACME Corp (dup)|Manufacturing||1200|China|{sf_ts('2024-02-01T00:00:00')}"
            ),
        ],
    )
    write_csv(
        folder / "User.csv",
        SF_USER,
        [
            ["005A00000000001AAA", "Li Lei", "li@example.com", "1", "005A00000000009AAA", "East"],
            row("005A00000000002AAA|Han Meimei|han@example.com|1|005A00000000009AAA|East"),
        ],
    )
    return folder


# --- Chinese no-code CRM: three daily current-state exports ---------------------------

CN_OPP_HEADER = [
    "商机编号",
    "商机名称",
    "客户名称",
    "负责人",
    "销售阶段",
    "预计成交金额",
    "创建时间",
    "结单日期",
    "输单原因",
    "商机状态",
]


def write_cn_crm(folder: Path) -> Path:
    """商机 exported on 6/1 (XLSX), 6/2 (GB18030 CSV) and 6/3 (UTF-8 BOM CSV); a 跟进记录
    workbook; a 客户 sheet. S1 advances, S2 slips back, S3 is won then drops out of the
    full export, S4 is lost without a reason."""
    write_xlsx(
        folder / "商机_20250601.xlsx",
        {
            "商机": (
                CN_OPP_HEADER,
                [
                    [
                        "S1",
                        "华信ERP",
                        "华信科技",
                        "张伟",
                        "初步接触",
                        "12.5万",
                        "2025年5月1日",
                        None,
                        None,
                        "进行中",
                    ],
                    [
                        "S2",
                        "恒达CRM",
                        "恒达集团",
                        "王芳",
                        "需求确认",
                        "¥8,000",
                        datetime(2025, 5, 10, 9, 30),
                        None,
                        None,
                        "进行中",
                    ],
                    [
                        "S3",
                        "新峰数据平台",
                        "新峰制造",
                        "张伟",
                        "方案报价",
                        "8000元",
                        45797,
                        None,
                        None,
                        "进行中",
                    ],
                ],
            )
        },
    )
    write_csv(
        folder / "商机_20250602.csv",
        CN_OPP_HEADER,
        [
            row("S1|华信ERP|华信科技|张伟|需求确认|12.5万|2025年5月1日|||进行中"),
            row("S2|恒达CRM|恒达集团|王芳|需求确认|¥8,000|2025/5/10 09:30|||进行中"),
            row("S3|新峰数据平台|新峰制造|张伟|赢单|8000元|2025/5/20 14:20|2025/6/2||赢单"),
            row("S4|长城年度服务|长城物流|王芳|初步接触|3万|2025/6/2 10:00|||进行中"),
        ],
        encoding="gb18030",
    )
    # by 6/3 the form has gained 所属行业: the 客户 sheet's industry wins where it has one
    write_csv(
        folder / "商机_20250603.csv",
        [*CN_OPP_HEADER, "所属行业"],
        [
            row("S1|华信ERP|华信科技|张伟|方案报价|12.5万|2025年5月1日|||进行中|软件"),
            row("S2|恒达CRM|恒达集团|王芳|初步接触|¥8,000|2025/5/10 09:30|||进行中|"),
            row("S4|长城年度服务|长城物流|王芳|输单|3万|2025/6/2 10:00|2025-06-03||输单|物流"),
        ],
        bom=True,
    )
    follow_header = ["关联商机编号", "客户名称", "跟进方式", "跟进时间", "跟进人", "跟进内容"]
    write_xlsx(
        folder / "跟进记录.xlsx",
        {
            "跟进记录": (
                follow_header,
                [
                    ["S1", "华信科技", "电话", "2025/6/1 10:00", "张伟", "首次沟通"],
                    ["S1", "华信科技", "上门拜访", "2025/6/2 15:00", "张伟", "现场调研"],
                    row("S1|华信科技|上门拜访|2025/6/2 15:00|张伟|现场调研"),  # exported twice
                    ["S2", "恒达集团", "微信", datetime(2025, 6, 3, 11, 0), "王芳", "发送资料"],
                    ["S4", "长城物流", "视频会议", "2025年6月2日", "王芳", "需求沟通"],
                ],
            )
        },
    )
    write_xlsx(
        folder / "客户.xlsx",
        {
            "客户": (
                ["客户名称", "所属行业", "人员规模", "所在地区"],
                [
                    ["华信科技", "制造业", "100-499人", "华东"],
                    ["恒达集团", "金融", "500人以上", "华北"],
                ],
            )
        },
    )
    return folder


# --- HubSpot: deals export (UI labels) and engagements ---------------------------------


# A HubSpot deals export's own columns, before any "Date entered" stage columns.
HUBSPOT_DEAL_HEADER = [
    "Record ID",
    "Deal Name",
    "Deal Stage",
    "Pipeline",
    "Amount",
    "Close Date",
    "Create Date",
    "Deal owner",
    "Closed Lost Reason",
]


def write_hubspot(folder: Path) -> Path:
    header = [
        *HUBSPOT_DEAL_HEADER,
        'Date entered "Appointment Scheduled (Sales Pipeline)"',
        'Date exited "Appointment Scheduled (Sales Pipeline)"',
        'Date entered "Qualified To Buy (Sales Pipeline)"',
        'Date entered "Contract Sent (Sales Pipeline)"',
        'Date entered "Closed Won (Sales Pipeline)"',
        'Date entered "Closed Lost (Sales Pipeline)"',
        "Merged Deal IDs",
    ]
    write_csv(
        folder / "hubspot-crm-exports-all-deals-2025-06-30.csv",
        header,
        [
            row(
                "9001|Big deal|Closed Won|Sales Pipeline|12000|2025-03-01 10:00|2025-01-01 09:00|Ann Lee||2025-01-01 09:00|2025-01-10 09:00|2025-01-10 09:00|2025-02-01 09:00|2025-03-01 10:00||9009"
            ),
            row(
                "9002|Lost deal|Closed Lost|Sales Pipeline|5000|2025-02-15 10:00|2025-01-05 09:00|Bob Wu|Went with competitor|2025-01-05 09:00|||||2025-02-15 10:00|"
            ),
            # open: its Close Date is only the expected close, not a close
            row(
                "9003|Open deal|Qualified To Buy|Sales Pipeline|7000|2025-08-01 10:00|2025-05-01 09:00|Ann Lee||2025-05-01 09:00|2025-05-20 09:00|2025-05-20 09:00||||"
            ),
            # merged into 9001 in HubSpot but still in this export: counted once (as 9001)
            row(
                "9009|Big deal (dup)|Closed Won|Sales Pipeline|12000|2025-03-01 10:00|2025-01-02 09:00|Ann Lee||2025-01-02 09:00||||2025-03-01 10:00||"
            ),
        ],
    )
    engagements = [
        {
            "hs_object_id": "e1",
            "hs_timestamp": "2025-01-05T02:00:00Z",
            "hs_engagement_type": "CALL",
            "hubspot_owner_id": "Ann Lee",
            "associated_deal_ids": "9001",
        },
        {
            "hs_object_id": "e2",
            "hs_timestamp": "1736215200000",
            "hs_engagement_type": "EMAIL",
            "hubspot_owner_id": "Ann Lee",
            "associated_deal_ids": "9001;9003",
        },
        {
            "hs_object_id": "e3",
            "hs_timestamp": "2025-06-25T02:00:00Z",
            "hs_engagement_type": "MEETING",
            "hubspot_owner_id": "Ann Lee",
            "associated_deal_ids": "9003",
        },
        {
            "hs_object_id": "e3",
            "hs_timestamp": "2025-06-25T02:00:00Z",
            "hs_engagement_type": "MEETING",
            "hubspot_owner_id": "Ann Lee",
            "associated_deal_ids": "9003",
        },
    ]
    (folder / "engagements.jsonl").write_text(
        "\n".join(json.dumps(e) for e in engagements) + "\n", encoding="utf-8"
    )
    return folder
