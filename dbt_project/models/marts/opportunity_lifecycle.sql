-- One row per opportunity x stage visit. The open visit of an open deal runs to the
-- end of the as-of day; the closing visit (won/lost) has no duration.
with visits as (
    select * from {{ ref('int_stage_visits_collapsed') }}
),

opportunities as (
    select
        source_system,
        opportunity_id,
        status
    from {{ ref('int_opportunities_deduplicated') }}
)

select
    n.opportunity_id,
    n.source_system,
    n.stage,
    n.stage_order,
    n.previous_stage,
    n.visit_number,
    n.entered_at,
    n.exited_at,
    case
        when n.is_closing then null
        else
            {{ round_half_up(days_between('n.entered_at', 'coalesce(n.exited_at, ' ~ as_of_end() ~ ')'), 2) }}
    end as days_in_stage,
    n.is_last_visit as is_current,
    n.is_closing as is_closing_stage,
    coalesce(
        not n.is_closing and n.stage_order < n.previous_stage_order, false
    ) as is_regression,
    case
        when not n.is_closing and n.stage_order > n.previous_stage_order + 1
            then n.stage_order - n.previous_stage_order - 1
        else 0
    end as stages_skipped,
    o.status as opportunity_status
from visits as n
inner join opportunities as o
    on {{ same_deal('n', 'o') }}
