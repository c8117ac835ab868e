-- Per source and open stage: deals that reached it (visited it or any later stage, or
-- won), deals that advanced past it (a later stage, or won), deals won, and the
-- conversion to the next stage and to won. Stages a deal skipped count as passed.
with deals as (
    select
        o.source_system,
        o.opportunity_id,
        o.status,
        max(l.stage_order) filter (where not l.is_closing_stage) as furthest_order
    from {{ ref('opportunities') }} as o
    left join {{ ref('opportunity_lifecycle') }} as l
        on l.source_system = o.source_system and l.opportunity_id = o.opportunity_id
    group by 1, 2, 3
),

pipeline_stages as (
    -- the open stages of the pipelines in use, not every seed row
    select distinct s.source_system, s.stage, s.stage_order, s.default_probability
    from {{ ref('int_stages_resolved') }} as s
    inner join {{ ref('opportunity_lifecycle') }} as l
        on l.source_system = s.source_system and l.stage = s.stage
    where not s.is_closed and s.stage_order is not null
),

flags as (
    select
        s.source_system,
        s.stage,
        s.stage_order,
        s.default_probability,
        d.opportunity_id,
        d.furthest_order >= s.stage_order or d.status = 'won' as reached,
        d.furthest_order > s.stage_order or d.status = 'won' as advanced,
        d.status = 'won' as won
    from pipeline_stages as s
    inner join deals as d on d.source_system = s.source_system
)

select
    source_system,
    stage,
    stage_order,
    default_probability,
    count(*) filter (where reached) as reached,
    count(*) filter (where advanced) as advanced,
    count(*) filter (where reached and won) as won,
    {{ round_half_up('count(*) filter (where advanced) / nullif(count(*) filter (where reached), 0)', 4) }}
        as conversion_to_next,
    {{ round_half_up('count(*) filter (where reached and won) / nullif(count(*) filter (where reached), 0)', 4) }}
        as conversion_to_won
from flags
group by 1, 2, 3, 4
