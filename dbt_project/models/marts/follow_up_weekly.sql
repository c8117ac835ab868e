-- One row per owner x week (Monday start, business time zone) x activity type, plus an
-- `all` row for every week an owner held open deals, touched or not: the week a rep went
-- quiet shows as touches = 0. Deals held are counted from events (+1 in the week a deal
-- is created, -1 in the week after it closes) summed over the weeks, so the cost follows
-- deals, not deals x weeks.
with opportunities as (
    select
        source_system,
        owner_id,
        {{ week_start(local_date('created_at')) }} as created_week,
        {{ week_start(local_date('closed_at')) }} as closed_week
    from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
),

weeks as (
    select distinct week_start
    from {{ ref('int_calendar_days') }}
    where calendar_date <= {{ as_of_date() }}
),

-- a deal is held in the weeks from its creation to its close (both included); a deal
-- "closed" in a week before its creation week is never held
held_events as (
    select
        source_system,
        owner_id,
        created_week as week_start,
        1 as change
    from opportunities
    where closed_week is null or closed_week >= created_week
    union all
    select
        source_system,
        owner_id,
        closed_week + 7 as week_start,
        -1 as change
    from opportunities
    where closed_week >= created_week
),

weekly_changes as (
    select
        source_system,
        owner_id,
        week_start,
        sum(change) as change
    from held_events
    group by 1, 2, 3
),

owner_weeks as (
    select
        f.source_system,
        f.owner_id,
        w.week_start
    from (
        select
            source_system,
            owner_id,
            min(week_start) as first_week
        from held_events
        group by 1, 2
    ) as f
    inner join weeks as w on f.first_week <= w.week_start
),

owned as (
    select
        source_system,
        owner_id,
        week_start,
        deals_owned
    from (
        select
            k.source_system,
            k.owner_id,
            k.week_start,
            cast(sum(coalesce(c.change, 0)) over (
                partition by k.source_system, k.owner_id order by k.week_start
            ) as bigint) as deals_owned
        from owner_weeks as k
        left join weekly_changes as c
            on
                k.source_system = c.source_system and c.owner_id is not distinct from k.owner_id
                and k.week_start = c.week_start
    ) as owner_week_totals
    where deals_owned > 0
),

touches as (
    select
        source_system,
        owner_id,
        week_start,
        activity_type as touch_type,
        is_first_of_week,
        is_first_of_type_in_week
    from {{ ref('int_opportunity_touches') }}
),

-- each type's counts and all types' (activity_type 'all') together, in one pass over the
-- touches (tens of millions at scale): grouping sets, not two aggregations of the same
-- rows. A deal is touched in a week by its first touch there (of the type, for a type's
-- row): counting those flags costs a sum, where count(distinct) of the deals took ten
-- times as long at a million deals.
counted as (
    select
        source_system,
        owner_id,
        week_start,
        case when grouping(touch_type) = 1 then 'all' else touch_type end as activity_type,
        grouping(touch_type) = 1 as is_all_types,
        count(*) as touches,
        count(case when is_first_of_week then 1 end) as deals_touched_all_types,
        count(case when is_first_of_type_in_week then 1 end) as deals_touched_of_type
    from touches
    group by grouping sets (
        (source_system, owner_id, week_start, touch_type),  -- noqa: AM06
        (source_system, owner_id, week_start)
    )
),

week_owner as (
    select
        source_system,
        owner_id,
        week_start
    from owned
    union
    select
        source_system,
        owner_id,
        week_start
    from counted
    where is_all_types
)

select
    k.source_system,
    k.owner_id,
    w.owner_name,
    w.team,
    k.week_start,
    'all' as activity_type,
    coalesce(a.touches, 0) as touches,
    coalesce(a.deals_touched_all_types, 0) as deals_touched,
    coalesce(d.deals_owned, 0) as deals_owned
from week_owner as k
left join counted as a
    on
        a.is_all_types
        and k.source_system = a.source_system and a.owner_id is not distinct from k.owner_id
        and k.week_start = a.week_start
left join owned as d
    on
        k.source_system = d.source_system and d.owner_id is not distinct from k.owner_id
        and k.week_start = d.week_start
left join {{ ref('int_owners_deduplicated') }} as w
    on k.source_system = w.source_system and k.owner_id = w.owner_id
union all
select
    t.source_system,
    t.owner_id,
    w.owner_name,
    w.team,
    t.week_start,
    t.activity_type,
    t.touches,
    t.deals_touched_of_type as deals_touched,
    coalesce(d.deals_owned, 0) as deals_owned
from counted as t
left join owned as d
    on
        t.source_system = d.source_system and d.owner_id is not distinct from t.owner_id
        and t.week_start = d.week_start
left join {{ ref('int_owners_deduplicated') }} as w
    on t.source_system = w.source_system and t.owner_id = w.owner_id
where not t.is_all_types
