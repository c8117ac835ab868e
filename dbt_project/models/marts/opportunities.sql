-- One row per live opportunity: its current state with account, owner, cycle time,
-- time in the current stage and follow-up summary.
with opportunities as (
    select * from {{ ref('int_opportunities_described') }}
),

current_visit as (
    select
        source_system,
        opportunity_id,
        entered_at,
        days_in_stage
    from {{ ref('opportunity_lifecycle') }}
    where is_current
),

follow_up as (
    select * from {{ ref('follow_up_frequency') }}
)

select
    o.opportunity_id,
    o.source_system,
    o.opportunity_name,
    o.stage,
    o.stage_order,
    o.status,
    o.status_raw,
    o.amount,
    o.currency,
    o.amount_reporting,
    '{{ var("reporting_currency") }}' as reporting_currency,
    o.probability,
    o.stage_probability,
    case
        when o.status = 'open'
            then
                {{ round_half_up('o.amount_reporting * coalesce(o.probability, o.stage_probability) / 100.0', 2) }}
    end as weighted_amount,
    o.owner_id,
    o.owner_name,
    o.team,
    o.account_id,
    o.account_name,
    o.industry,
    o.employees,
    o.lead_source,
    o.created_at,
    o.closed_at,
    o.expected_close_date,
    o.cycle_time_days,
    {{ round_half_up(days_between('o.created_at', as_of_end()), 2) }} as age_days,
    case when o.status = 'open' then v.entered_at end as current_stage_entered_at,
    case when o.status = 'open' then v.days_in_stage end as days_in_current_stage,
    f.last_activity_at,
    f.days_since_last_activity,
    coalesce(f.activity_count, 0) as activity_count,
    coalesce(f.is_stale, false) as is_stale,
    o.loss_reason,
    o.owner_id is null as is_missing_owner,
    o.owner_changes,
    o.stage_order is null and o.stage is not null as is_unknown_stage,
    o.closed_at < o.created_at as is_closed_before_created,
    o.created_at > {{ as_of_end() }} as is_created_after_as_of,
    o.is_no_longer_exported,
    o.has_merged_records,
    o.estimated_columns,
    coalesce(o.estimated_columns like '%created_at%', false) as is_created_at_estimated,
    coalesce(o.estimated_columns like '%amount%', false) as is_amount_estimated,
    o._file_name as source_file
from opportunities as o
left join current_visit as v
    on {{ same_deal('o', 'v') }}
left join follow_up as f
    on {{ same_deal('o', 'f') }}
