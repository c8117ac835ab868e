-- opportunity_lifecycle without its one figure counted from the as-of day (the open
-- visit's days so far): one row per opportunity x stage visit, the same from day to day
-- while the deals' stages and statuses stay, so a next day keeps it (and its tests) and
-- the mart, a view over it, adds the open visit's days. The days of a visit the deal has
-- left are worked out here, once: readers of the view (the usual days in each stage) then
-- compute nothing for them.
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
        when not n.is_closing and n.exited_at is not null
            then {{ round_half_up(days_between('n.entered_at', 'n.exited_at'), 2) }}
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
