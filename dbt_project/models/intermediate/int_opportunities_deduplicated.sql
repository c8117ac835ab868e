-- One row per opportunity as it stood on the as-of day (a rerun for a past day gives that
-- day's answer):
--   * version: the latest export made on or before the as-of day (export date, then
--     load, then row); a deal only exported later (a one-off export made after the
--     day) takes its earliest export, and is left out when it was created after the day;
--   * status: the source's word mapped to open/won/lost; when unknown or missing, a
--     closing stage decides (赢单 -> won), else the deal is open. A deal whose close
--     came after the as-of day was open on it: status open, stage the last open stage
--     entered by then (stage history is cut at the as-of day), no close or loss reason;
--   * closed_at: only for won/lost deals; when the export has no close time, the change
--     into the closing stage (history or successive exports), else the close date field;
--   * account_id: an account merged into another (Salesforce MasterRecordId) points at
--     the surviving account, so it is counted once;
--   * is_no_longer_exported: missing from its source's latest full current-state export;
--   * a deal merged into another (HubSpot merged deal ids) is left out: counted once;
--   * amount_reporting: the amount in the reporting currency (currency_rates seed; an
--     amount already in it needs no rate); NULL when a rate is missing (and the mart's
--     tests fail), never a silent 1.
with ranked as (
    select
        *,
        row_number() over (
            partition by source_system, opportunity_id
            order by
                _export_date > {{ as_of_date() }} nulls last,
                case when _export_date <= {{ as_of_date() }} then _export_date end desc nulls last,
                _export_date,
                _load_id desc,
                _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__opportunities') }}
),

stages as (
    select * from {{ ref('int_stages_resolved') }}
),

closing_history as (
    select
        h.source_system,
        h.opportunity_id,
        min(h.entered_at) as entered_at
    from {{ ref('int_stage_history_unioned') }} as h
    inner join stages as s on h.source_system = s.source_system and h.stage = s.stage
    where s.is_closed
    group by 1, 2
),

-- the last open stage entered by the as-of day, for deals that closed after it
last_open_stage as (
    select
        h.source_system,
        h.opportunity_id,
        max_by(h.stage, h.entered_at) as stage
    from {{ ref('int_stage_history_unioned') }} as h
    left join stages as s on h.source_system = s.source_system and h.stage = s.stage
    where not coalesce(s.is_closed, false)
    group by 1, 2
),

merged_accounts as (
    select distinct
        source_system,
        account_id,
        merged_into_id
    from {{ ref('stg_raw__accounts') }}
    where merged_into_id is not null
),

merged_deals as (
    select distinct
        source_system,
        trim(merged_id) as opportunity_id,
        merged_into_id
    from (
        select
            source_system,
            opportunity_id as merged_into_id,
            {{ split_to_rows('merged_from_ids', ';') }} as merged_id
        from ranked
        where _version_rank = 1 and merged_from_ids is not null
    ) as parts
    where trim(merged_id) <> ''
),

{{ reporting_rate_ctes() }},

owner_changes as (
    select
        source_system,
        opportunity_id,
        count(*) as owner_changes
    from (
        select
            source_system,
            opportunity_id,
            owner_id,
            {{ in_previous_export("owner_id") }} as previous_owner_id
        from {{ ref('stg_raw__opportunity_snapshots') }}
        where snapshot_date <= {{ as_of_date() }}
    )
    where previous_owner_id is distinct from owner_id and previous_owner_id is not null
    group by 1, 2
),

latest_full_export as (
    select
        source_system,
        max(export_date) as export_date
    from {{ ref('stg_raw__load_ledger') }}
    where
        status = 'loaded' and table_name = 'opportunities' and export_kind = 'full'
        and export_date <= {{ as_of_date() }}
    group by 1
),

latest as (
    select
        r.*,
        coalesce(
            r.status,
            case when s.is_closed and s.is_won then 'won' when s.is_closed then 'lost' end,
            'open'
        ) as latest_status,
        s.is_closed as is_closing_stage
    from ranked as r
    left join stages as s on r.source_system = s.source_system and r.stage = s.stage
    where
        r._version_rank = 1
        and not (r._export_date > {{ as_of_date() }} and r.created_at >= {{ as_of_end() }})
),

with_close as (
    select
        *,
        coalesce(latest_closed_at >= {{ as_of_end() }}, false) as is_closed_after_as_of
    from (
        select
            l.*,
            case
                when l.latest_status in ('won', 'lost') then coalesce(
                    l.closed_at,
                    c.entered_at,
                    {{ local_timestamp_to_tz('cast(l.expected_close_date as timestamp)') }}
                )
            end as latest_closed_at
        from latest as l
        left join closing_history as c
            on {{ same_deal('l', 'c') }}
    )
),

resolved as (
    select
        w.*,
        case
            when w.is_closed_after_as_of
                then coalesce(o.stage, case when not coalesce(w.is_closing_stage, false) then w.stage end)
            else w.stage
        end as stage_as_of,
        case when w.is_closed_after_as_of then null else w.loss_reason end as loss_reason_as_of
    from with_close as w
    left join last_open_stage as o
        on {{ same_deal('w', 'o') }}
)

select
    r.source_system,
    r.opportunity_id,
    r.opportunity_name,
    coalesce(m.merged_into_id, r.account_id) as account_id,
    r.owner_id,
    r.stage_as_of as stage,
    s.stage_order,
    case when r.is_closed_after_as_of then 'open' else r.latest_status end as status,
    r.status_raw,
    r.amount,
    r.currency,
    case when not r.is_closed_after_as_of then r.probability end as probability,
    -- a decimal, so that sums over millions of deals are exact and reruns identical
    cast(
        {{ amount_in_reporting_currency('r.amount', 'r.currency', 'fx.rate_to_cny') }}
        as decimal(18, 2)
    ) as amount_reporting,
    s.default_probability as stage_probability,
    coalesce(oc.owner_changes, 0) as owner_changes,
    r.created_at,
    case when not r.is_closed_after_as_of then r.latest_closed_at end as closed_at,
    r.expected_close_date,
    r.loss_reason_as_of as loss_reason,
    r.lead_source,
    r.is_deleted,
    coalesce(r._export_date < f.export_date, false) as is_no_longer_exported,
    r.merged_from_ids is not null as has_merged_records,
    r.deal_account_name,
    r.deal_industry,
    r.extra,
    r.estimated_columns,
    r._file_name,
    r._export_date
from resolved as r
left join merged_accounts as m
    on r.source_system = m.source_system and r.account_id = m.account_id
left join latest_full_export as f on r.source_system = f.source_system
left join rates as fx on fx.currency = upper(r.currency)
left join stages as s on r.source_system = s.source_system and r.stage_as_of = s.stage
left join owner_changes as oc
    on {{ same_deal('r', 'oc') }}
where not exists (
    select 1 from merged_deals as md
    where md.source_system = r.source_system and md.opportunity_id = r.opportunity_id
)
