-- One row per deal x open stage of its pipeline: did the deal reach the stage, go past
-- it, win from it? Only what the stage visits show counts (a won deal does not reach
-- stages it was never seen in); a skipped stage counts as passed. A deal with no visit
-- of an open stage of known order (a closed deal exported only in its closing stage)
-- has an unknown path: it reaches nothing and is counted apart, so it never inflates
-- conversion.
with deals as (
    select
        o.source_system,
        o.opportunity_id,
        o.status,
        o.created_at,
        max(l.stage_order) filter (where not l.is_closing_stage) as furthest_order
    from {{ ref('int_opportunities_described') }} as o
    left join {{ ref('opportunity_lifecycle') }} as l
        on {{ same_deal('o', 'l') }}
    group by 1, 2, 3, 4
),

pipeline_stages as (
    -- the open stages of the pipelines in use, not every seed row
    select distinct
        s.source_system,
        s.stage,
        s.stage_order,
        s.default_probability
    from {{ ref('int_stages_resolved') }} as s
    inner join {{ ref('opportunity_lifecycle') }} as l
        on s.source_system = l.source_system and s.stage = l.stage
    where not s.is_closed and s.stage_order is not null
)

select
    s.source_system,
    s.stage,
    s.stage_order,
    s.default_probability,
    d.opportunity_id,
    d.status,
    d.created_at,
    d.furthest_order is null as is_path_unknown,
    coalesce(d.furthest_order >= s.stage_order, false) as reached,
    coalesce(
        d.furthest_order > s.stage_order
        or (d.status = 'won' and d.furthest_order >= s.stage_order),
        false
    ) as advanced
from pipeline_stages as s
inner join deals as d on s.source_system = d.source_system
