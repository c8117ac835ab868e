-- One row per closed (won or lost) live opportunity: how long it took, where the time
-- went, and the segments to compare it by.
with closed as (
    select * from {{ ref('int_opportunities_described') }}
    where status in ('won', 'lost') and cycle_time_days is not null
),

visits as (
    select * from {{ ref('opportunity_lifecycle') }}
    where not is_closing_stage
),

per_stage as (
    select
        source_system,
        opportunity_id,
        stage,
        min(stage_order) as stage_order,
        sum(days_in_stage) as days
    from visits
    group by 1, 2, 3
),

ranked_stages as (
    select
        *,
        row_number() over (
            partition by source_system, opportunity_id
            order by days desc nulls last, stage_order asc nulls last, stage asc
        ) as slowness_rank
    from per_stage
),

stage_summary as (
    select
        source_system,
        opportunity_id,
        count(*) as stages_visited,
        max(case when slowness_rank = 1 then stage end) as slowest_stage,
        max(days) as slowest_stage_days,
        {{ json_object_agg('stage', round_half_up('days', 2), 'coalesce(stage_order, 2147483647)') }}
            as days_by_stage
    from ranked_stages
    group by 1, 2
),

first_wins as (
    -- when each account first won a deal: later deals are with an existing customer
    select
        source_system,
        account_id,
        min(closed_at) as first_won_at
    from {{ ref('int_opportunities_described') }}
    where status = 'won' and account_id is not null
    group by 1, 2
),

regressions as (
    select
        source_system,
        opportunity_id,
        count(*) filter (where is_regression) as regressions
    from {{ ref('opportunity_lifecycle') }}
    group by 1, 2
)

select
    c.opportunity_id,
    c.source_system,
    c.status as outcome,
    c.created_at,
    c.closed_at,
    c.cycle_time_days,
    s.stages_visited,
    s.slowest_stage,
    s.slowest_stage_days,
    s.days_by_stage,
    coalesce(r.regressions, 0) as regressions,
    c.amount,
    c.currency,
    c.amount_reporting,
    case
        when fw.first_won_at < c.created_at then 'existing'
        else 'new'
    end as customer_type,
    c.industry,
    case
        when c.employees is null then 'unknown'
        when c.employees < 100 then 'small (<100)'
        when c.employees < 1000 then 'medium (100-999)'
        else 'large (1000+)'
    end as size_band,
    case
        when c.amount_reporting is null then 'unknown'
        when c.amount_reporting < 50000 then '<5万'
        when c.amount_reporting < 200000 then '5万-20万'
        when c.amount_reporting < 1000000 then '20万-100万'
        else '100万+'
    end as amount_band,
    c.lead_source,
    c.owner_id,
    c.owner_name,
    c.team
from closed as c
left join stage_summary as s
    on {{ same_deal('c', 's') }}
left join first_wins as fw
    on c.source_system = fw.source_system and c.account_id = fw.account_id
left join regressions as r
    on {{ same_deal('c', 'r') }}
