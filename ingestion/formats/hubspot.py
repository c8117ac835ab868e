"""HubSpot: the deals export (UI labels or internal property names) and engagements.

The deals export's per-stage `Date entered "<Stage> (<Pipeline>)"` columns (or the
internal `hs_date_entered_<stage>` properties) become stage history. HubSpot overwrites
`closedate` when a deal closes, so it is the real close only for closed deals: the marts
use closed_at only for won/lost deals and treat it as the expected close otherwise.
"""

from __future__ import annotations

from ingestion.formats.base import Field, Format, Output, Unpivot
from ingestion.schema import FRACTION

SOURCE = "hubspot"

_DEAL_ID = Field(("Record ID", "hs_object_id", "Deal ID", "dealId"))

DEALS = Format(
    name="hubspot deals",
    label="HubSpot deals export",
    source_system=SOURCE,
    signature=(("Deal Name", "Deal Stage"), ("dealname", "dealstage")),
    required=("opportunity_id", "created_at"),
    current_state=True,
    name_hints=("deal", "hubspot"),
    outputs=(
        Output(
            "opportunities",
            {
                "opportunity_id": _DEAL_ID,
                "opportunity_name": Field(("Deal Name", "dealname")),
                "account_id": Field(
                    (
                        "Associated Company IDs",
                        "Associated Company ID",
                        "associatedcompanyid",
                        "Associated Company",
                        "company",
                    )
                ),
                "owner_id": Field(("Deal owner", "hubspot_owner_id", "Deal Owner")),
                "stage": Field(("Deal Stage", "dealstage")),
                "status": Field(
                    sql="CASE WHEN coalesce({bool:hs_is_closed_won}, {bool:Is Closed Won}) "
                    "THEN 'won' WHEN coalesce({bool:hs_is_closed}, {bool:Is closed}) THEN 'lost' "
                    "WHEN coalesce({bool:hs_is_closed}, {bool:Is closed}) = false THEN 'open' END"
                ),
                "amount": Field(("Amount", "amount")),
                "probability": Field(
                    ("Deal Stage Probability", "Deal probability", "hs_deal_stage_probability"),
                    kind=FRACTION,
                ),
                "currency": Field(("Currency", "deal_currency_code", "Deal currency code")),
                "created_at": Field(("Create Date", "createdate")),
                "closed_at": Field(("Close Date", "closedate")),
                "expected_close_date": Field(("Close Date", "closedate")),
                "loss_reason": Field(("Closed Lost Reason", "closed_lost_reason")),
                "source": Field(
                    (
                        "Original Source Type",
                        "Original Source",
                        "hs_analytics_source",
                        "Deal source",
                        "Source",
                    )
                ),
                "is_deleted": Field(("Archived", "archived")),
                "merged_from_ids": Field(("Merged Deal IDs", "hs_merged_object_ids")),
            },
        ),
        Output(
            "stage_history",
            {"opportunity_id": _DEAL_ID},
            unpivot=Unpivot(
                header_pattern=(
                    r'^(?:Date entered "(.+?)(?: \([^()]*\))?"|hs_(?:v2_)?date_entered_(.+))$'
                ),
                label_column="stage",
                value_column="entered_at",
            ),
        ),
    ),
)

ENGAGEMENTS = Format(
    name="hubspot engagements",
    label="HubSpot engagements / activities export",
    source_system=SOURCE,
    signature=(
        ("hs_timestamp", "hs_engagement_type"),
        ("hs_timestamp", "type"),
        ("Activity date", "Activity type"),
        ("engagement.timestamp", "engagement.type"),
    ),
    required=("occurred_at",),
    name_hints=("engagement", "activit", "hubspot"),
    outputs=(
        Output(
            "activities",
            {
                "activity_id": Field(
                    ("Record ID", "hs_object_id", "engagement_id", "engagement.id", "id"),
                    hash_fallback=True,
                ),
                # An engagement may list several deals ("123;456"): it counts for the first.
                "opportunity_id": Field(
                    sql="nullif(trim(split_part(coalesce({Associated Deal IDs}, "
                    "{associated_deal_ids}, {Associated Deal}, {deal_id}, "
                    "{associations.dealIds}), ';', 1)), '')"
                ),
                "account_id": Field(
                    sql="nullif(trim(split_part(coalesce({Associated Company IDs}, "
                    "{associated_company_ids}, {Associated Company}, {company_id}, "
                    "{associations.companyIds}), ';', 1)), '')"
                ),
                "owner_id": Field(
                    ("hubspot_owner_id", "Activity assigned to", "Owner", "engagement.ownerId")
                ),
                "activity_type": Field(
                    ("hs_engagement_type", "Activity type", "type", "engagement.type")
                ),
                "occurred_at": Field(("hs_timestamp", "Activity date", "engagement.timestamp")),
                "duration_seconds": Field(
                    sql="try_cast(try_cast({hs_call_duration} AS DOUBLE) / 1000 AS BIGINT)"
                ),
                "subject": Field(
                    (
                        "hs_call_title",
                        "hs_email_subject",
                        "hs_meeting_title",
                        "Activity title",
                        "Subject",
                        "subject",
                    )
                ),
            },
        ),
    ),
)

HUBSPOT_FORMATS = (DEALS, ENGAGEMENTS)
