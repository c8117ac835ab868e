"""Salesforce data export (Data Loader / Data Export Service): one CSV per object, API names.

Facts from the reference: booleans as true/false or 1/blank, timestamps in UTC with an
offset, CloseDate/ActivityDate date-only (kept on their day), IsDeleted rows flagged,
Tasks/Events belong to an opportunity only when WhatId is an Opportunity id (006…),
OpportunityHistory rows with an unchanged StageName are not stage changes (the marts
collapse them), the loss reason is a custom field.
"""

from __future__ import annotations

from ingestion.formats.base import Field, Format, Output
from ingestion.schema import DAY_TIMESTAMP

SOURCE = "salesforce"
LOSS_REASON_FIELDS = (
    "Loss_Reason__c",
    "Closed_Lost_Reason__c",
    "Reason_Lost__c",
    "Lost_Reason__c",
    "Loss_Reason_Detail__c",
)
# Objects whose rows the warehouse does not use (and whose personal data it does not keep).
IGNORED_OBJECTS = {
    "Contact": (("Id", "AccountId", "LastName", "Email"), ("Id", "AccountId", "LastName")),
    "Lead": (("Id", "Company", "IsConverted"), ("Id", "Company", "LastName")),
}


def opportunity_format(loss_reason_fields: tuple[str, ...] = ()) -> Format:
    return Format(
        name="salesforce Opportunity",
        label="Salesforce Opportunity export",
        source_system=SOURCE,
        signature=(("Id", "StageName", "CreatedDate"),),
        forbidden=("OpportunityId",),
        required=("opportunity_id", "created_at"),
        current_state=True,
        name_hints=("opportunity",),
        outputs=(
            Output(
                "opportunities",
                {
                    "opportunity_id": Field(("Id",)),
                    "opportunity_name": Field(("Name",)),
                    "account_id": Field(("AccountId",)),
                    "owner_id": Field(("OwnerId",)),
                    "stage": Field(("StageName",)),
                    "status": Field(
                        sql="CASE WHEN {bool:IsWon} THEN 'won' WHEN {bool:IsClosed} THEN 'lost' "
                        "WHEN {bool:IsClosed} = false THEN 'open' END"
                    ),
                    "amount": Field(("Amount",)),
                    "probability": Field(("Probability",)),
                    "currency": Field(("CurrencyIsoCode",)),
                    "created_at": Field(("CreatedDate",)),
                    # CloseDate is the close for closed deals and the expected close for open
                    # ones; the marts use closed_at only for won/lost deals.
                    "closed_at": Field(("CloseDate",), kind=DAY_TIMESTAMP),
                    "expected_close_date": Field(("CloseDate",)),
                    "loss_reason": Field(tuple(loss_reason_fields) + LOSS_REASON_FIELDS),
                    "source": Field(("LeadSource",)),
                    "is_deleted": Field(("IsDeleted",)),
                },
            ),
        ),
    )


OPPORTUNITY_HISTORY = Format(
    name="salesforce OpportunityHistory",
    label="Salesforce OpportunityHistory export",
    source_system=SOURCE,
    signature=(("OpportunityId", "StageName", "CreatedDate"),),
    forbidden=("Field",),
    required=("opportunity_id", "entered_at"),
    name_hints=("opportunityhistory",),
    outputs=(
        Output(
            "stage_history",
            {
                "opportunity_id": Field(("OpportunityId",)),
                "stage": Field(("StageName",)),
                "entered_at": Field(("CreatedDate",)),
                "is_deleted": Field(("IsDeleted",)),
            },
        ),
    ),
)

OPPORTUNITY_FIELD_HISTORY = Format(
    name="salesforce OpportunityFieldHistory",
    label="Salesforce OpportunityFieldHistory export (StageName rows)",
    source_system=SOURCE,
    signature=(("OpportunityId", "Field", "NewValue", "CreatedDate"),),
    required=("opportunity_id", "entered_at"),
    name_hints=("fieldhistory",),
    outputs=(
        Output(
            "stage_history",
            {
                "opportunity_id": Field(("OpportunityId",)),
                "stage": Field(("NewValue",)),
                "entered_at": Field(("CreatedDate",)),
                "is_deleted": Field(("IsDeleted",)),
            },
            where="{Field} IN ('StageName', 'stagename')",
        ),
    ),
)

OPPORTUNITY_STAGE = Format(
    name="salesforce OpportunityStage",
    label="Salesforce OpportunityStage export (stage order and meaning)",
    source_system=SOURCE,
    signature=(("ApiName", "IsClosed", "IsWon", "SortOrder"), ("MasterLabel", "IsClosed", "IsWon")),
    required=("stage",),
    name_hints=("opportunitystage",),
    outputs=(
        Output(
            "stage_definitions",
            {
                "stage": Field(("ApiName", "MasterLabel")),
                "stage_order": Field(("SortOrder",)),
                "is_closed": Field(sql="coalesce({bool:IsClosed}, false)"),
                "is_won": Field(sql="coalesce({bool:IsWon}, false)"),
                "default_probability": Field(("DefaultProbability",)),
            },
        ),
    ),
)

_ACTIVITY_COMMON = {
    "activity_id": Field(("Id",)),
    "opportunity_id": Field(sql="CASE WHEN {WhatId} LIKE '006%' THEN {WhatId} END"),
    "account_id": Field(
        sql="coalesce({AccountId}, CASE WHEN {WhatId} LIKE '001%' THEN {WhatId} END)"
    ),
    "owner_id": Field(("OwnerId",)),
    "subject": Field(("Subject",)),
    "is_deleted": Field(("IsDeleted",)),
}

TASK = Format(
    name="salesforce Task",
    label="Salesforce Task export",
    source_system=SOURCE,
    signature=(("Id", "WhatId", "Status"), ("Id", "WhatId", "TaskSubtype")),
    required=("activity_id",),
    name_hints=("task",),
    outputs=(
        Output(
            "activities",
            {
                **_ACTIVITY_COMMON,
                "activity_type": Field(("Type", "Type__c", "TaskSubtype")),
                "occurred_at": Field(
                    sql="coalesce({ts:CompletedDateTime}, {day:ActivityDate}, {ts:CreatedDate})"
                ),
                "duration_seconds": Field(("CallDurationInSeconds",)),
            },
        ),
    ),
)

EVENT = Format(
    name="salesforce Event",
    label="Salesforce Event export",
    source_system=SOURCE,
    signature=(("Id", "WhatId", "StartDateTime"), ("Id", "WhatId", "DurationInMinutes")),
    required=("activity_id",),
    name_hints=("event",),
    outputs=(
        Output(
            "activities",
            {
                **_ACTIVITY_COMMON,
                "activity_type": Field(
                    sql="coalesce({Type}, {Type__c}, {EventSubtype}, 'meeting')"
                ),
                "occurred_at": Field(
                    sql="coalesce({ts:StartDateTime}, {ts:ActivityDateTime}, "
                    "{day:ActivityDate}, {ts:CreatedDate})"
                ),
                "duration_seconds": Field(sql="try_cast({DurationInMinutes} AS BIGINT) * 60"),
            },
        ),
    ),
)

ACCOUNT = Format(
    name="salesforce Account",
    label="Salesforce Account export",
    source_system=SOURCE,
    signature=(
        ("Id", "Name", "Industry"),
        ("Id", "Name", "NumberOfEmployees"),
        ("Id", "Name", "BillingCity"),
        ("Id", "Name", "AnnualRevenue"),
    ),
    forbidden=("AccountId", "IsConverted", "Company", "Username", "StageName"),
    required=("account_id",),
    name_hints=("account",),
    outputs=(
        Output(
            "accounts",
            {
                "account_id": Field(("Id",)),
                "account_name": Field(("Name",)),
                "industry": Field(("Industry",)),
                "employees": Field(("NumberOfEmployees",)),
                "annual_revenue": Field(("AnnualRevenue",)),
                "region": Field(("BillingState", "BillingCountry")),
                "merged_into_id": Field(("MasterRecordId",)),
                "is_deleted": Field(("IsDeleted",)),
            },
        ),
    ),
)

USER = Format(
    name="salesforce User",
    label="Salesforce User export",
    source_system=SOURCE,
    signature=(("Id", "Username"),),
    required=("owner_id",),
    name_hints=("user",),
    outputs=(
        Output(
            "owners",
            {
                "owner_id": Field(("Id",)),
                "owner_name": Field(
                    sql="coalesce({Name}, trim(concat_ws(' ', {FirstName}, {LastName})))"
                ),
                "team": Field(("Department", "Division", "UserRoleId")),
                "manager_id": Field(("ManagerId",)),
            },
        ),
    ),
)


def ignored_formats() -> tuple[Format, ...]:
    return tuple(
        Format(
            name=f"salesforce {obj}",
            label=f"Salesforce {obj} export",
            source_system=SOURCE,
            outputs=(),
            signature=signatures,
            ignore_reason=f"a Salesforce {obj} export: the warehouse does not use {obj} records "
            "(they hold personal data); nothing loaded",
        )
        for obj, signatures in IGNORED_OBJECTS.items()
    )


def salesforce_formats(loss_reason_fields: tuple[str, ...] = ()) -> tuple[Format, ...]:
    return (
        opportunity_format(loss_reason_fields),
        OPPORTUNITY_HISTORY,
        OPPORTUNITY_FIELD_HISTORY,
        OPPORTUNITY_STAGE,
        TASK,
        EVENT,
        ACCOUNT,
        USER,
        *ignored_formats(),
    )
