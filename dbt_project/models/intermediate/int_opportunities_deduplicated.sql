-- One row per opportunity: the latest export of it wins (export date, then load, then row).
--   * status: the source's word mapped to open/won/lost; when unknown or missing, a
--     closing stage decides (赢单 -> won), else the deal is open;
--   * closed_at: only for won/lost deals; when the export has no close time, the change
--     into the closing stage (history or successive exports), else the close date field;
--   * account_id: an account merged into another (Salesforce MasterRecordId) points at
--     the surviving account, so it is counted once;
--   * is_no_longer_exported: missing from its source's latest full current-state export;
--   * a deal merged into another (HubSpot merged deal ids) is left out: counted once;
--   * amount_reporting: the amount in the reporting currency (currency_rates seed); NULL
--     when the rate is missing (and the currency test fails), never a silent 1.
with ranked as (
    select
        *,
        row_number() over (
            partition by source_system, opportunity_id
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__opportunities') }}
),

stages as (
    select * from {{ ref('int_stages_resolved') }}
),

closing_history as (
    select h.source_system, h.opportunity_id, min(h.entered_at) as entered_at
    from {{ ref('int_stage_history_unioned') }} as h
    inner join stages as s on s.source_system = h.source_system and s.stage = h.stage
    where s.is_closed
    group by 1, 2
),

merged_accounts as (
    select distinct source_system, account_id, merged_into_id
    from {{ ref('stg_raw__accounts') }}
    where merged_into_id is not null
),

merged_deals as (
    select distinct r.source_system, trim(merged.id) as opportunity_id, r.opportunity_id as merged_into_id
    from ranked as r, unnest(string_split(r.merged_from_ids, ';')) as merged(id)
    where r._version_rank = 1 and r.merged_from_ids is not null and trim(merged.id) <> ''
),

rates as (
    select upper(currency) as currency, rate_to_cny from {{ ref('currency_rates') }}
),

reporting_rate as (
    select rate_to_cny from rates where currency = upper('{{ var("reporting_currency") }}')
),

owner_changes as (
    select source_system, opportunity_id, count(*) as owner_changes
    from (
        select
            source_system,
            opportunity_id,
            owner_id,
            lag(owner_id) over (
                partition by source_system, opportunity_id order by snapshot_date, _load_id
            ) as previous_owner_id
        from {{ ref('stg_raw__opportunity_snapshots') }}
    )
    where previous_owner_id is distinct from owner_id and previous_owner_id is not null
    group by 1, 2
),

latest_full_export as (
    select source_system, max(export_date) as export_date
    from {{ ref('stg_raw__load_ledger') }}
    where status = 'loaded' and table_name = 'opportunities' and export_kind = 'full'
    group by 1
),

resolved as (
    select
        r.*,
        s.stage_order,
        coalesce(
            r.status,
            case when s.is_closed and s.is_won then 'won' when s.is_closed then 'lost' end,
            'open'
        ) as resolved_status
    from ranked as r
    left join stages as s on s.source_system = r.source_system and s.stage = r.stage
    where r._version_rank = 1
)

select
    r.source_system,
    r.opportunity_id,
    r.opportunity_name,
    coalesce(m.merged_into_id, r.account_id) as account_id,
    r.owner_id,
    r.stage,
    r.stage_order,
    r.resolved_status as status,
    r.status_raw,
    r.amount,
    r.currency,
    -- a decimal, so that sums over millions of deals are exact and reruns identical
    cast(round(r.amount * fx.rate_to_cny / (select rate_to_cny from reporting_rate), 2) as decimal(18, 2))
        as amount_reporting,
    s.default_probability as stage_probability,
    coalesce(oc.owner_changes, 0) as owner_changes,
    r.created_at,
    case
        when r.resolved_status in ('won', 'lost') then coalesce(
            r.closed_at,
            c.entered_at,
            {{ local_timestamp_to_tz('cast(r.expected_close_date as timestamp)') }}
        )
    end as closed_at,
    r.expected_close_date,
    r.loss_reason,
    r.lead_source,
    r.is_deleted,
    coalesce(r._export_date < f.export_date, false) as is_no_longer_exported,
    r.merged_from_ids is not null as has_merged_records,
    r.extra,
    r._file_name,
    r._export_date
from resolved as r
left join closing_history as c
    on c.source_system = r.source_system and c.opportunity_id = r.opportunity_id
left join merged_accounts as m
    on m.source_system = r.source_system and m.account_id = r.account_id
left join latest_full_export as f on f.source_system = r.source_system
left join rates as fx on fx.currency = upper(r.currency)
left join stages as s on s.source_system = r.source_system and s.stage = r.stage
left join owner_changes as oc
    on oc.source_system = r.source_system and oc.opportunity_id = r.opportunity_id
where not exists (
    select 1 from merged_deals as md
    where md.source_system = r.source_system and md.opportunity_id = r.opportunity_id
)
