-- One row per lost live opportunity: the reason as entered, its category through the
-- taxonomy seed (`unspecified` when blank, `other` when no keyword matches), and the
-- stage it was lost at (its last stage before the close).
with lost as (
    select * from {{ ref('int_opportunities_described') }}
    where status = 'lost'
),

taxonomy as (
    select
        lower(keyword) as keyword,
        loss_reason_category,
        priority
    from {{ ref('loss_reason_taxonomy') }}
),

categorised as (
    select
        l.source_system,
        l.opportunity_id,
        min_by(t.loss_reason_category, t.priority) as loss_reason_category
    from lost as l
    inner join taxonomy as t on contains(lower(l.loss_reason), t.keyword)
    group by 1, 2
),

lost_at as (
    select
        source_system,
        opportunity_id,
        max_by(stage, visit_number) as lost_at_stage
    from {{ ref('opportunity_lifecycle') }}
    where not is_closing_stage
    group by 1, 2
)

select
    l.opportunity_id,
    l.source_system,
    l.loss_reason,
    case
        when l.loss_reason is null then 'unspecified'
        else coalesce(c.loss_reason_category, 'other')
    end as loss_reason_category,
    la.lost_at_stage,
    l.closed_at as lost_at,
    cast(date_trunc('month', {{ local_date('l.closed_at') }}) as date) as lost_month,
    l.amount,
    l.currency,
    l.amount_reporting,
    l.industry,
    l.lead_source,
    l.owner_id,
    l.owner_name,
    l.team,
    l.cycle_time_days
from lost as l
left join categorised as c
    on {{ same_deal('l', 'c') }}
left join lost_at as la
    on {{ same_deal('l', 'la') }}
