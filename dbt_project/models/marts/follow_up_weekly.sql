-- One row per owner x week (Monday start, business time zone) x activity type, plus an
-- `all` row for every week an owner held open deals, touched or not: the week a rep went
-- quiet shows as touches = 0.
with opportunities as (
    select * from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
),

weeks as (
    select distinct week_start
    from {{ ref('int_calendar_days') }}
    where calendar_date <= {{ as_of_date() }}
),

owned as (
    -- deals an owner held open at some point of the week
    select
        o.source_system,
        o.owner_id,
        w.week_start,
        count(*) as deals_owned
    from opportunities as o
    inner join weeks as w
        on {{ local_date('o.created_at') }} < w.week_start + 7
        and (o.closed_at is null or {{ local_date('o.closed_at') }} >= w.week_start)
    group by 1, 2, 3
),

touches as (
    select
        a.source_system,
        o.owner_id,
        {{ week_start(local_date('a.occurred_at')) }} as week_start,
        a.activity_type,
        a.opportunity_id
    from {{ ref('int_activities_deduplicated') }} as a
    inner join opportunities as o
        on o.source_system = a.source_system and o.opportunity_id = a.opportunity_id
    where a.occurred_at < {{ as_of_end() }}
),

by_type as (
    select source_system, owner_id, week_start, activity_type,
        count(*) as touches, count(distinct opportunity_id) as deals_touched
    from touches
    group by 1, 2, 3, 4
),

all_types as (
    select source_system, owner_id, week_start, 'all' as activity_type,
        count(*) as touches, count(distinct opportunity_id) as deals_touched
    from touches
    group by 1, 2, 3
),

week_owner as (
    select source_system, owner_id, week_start from owned
    union
    select source_system, owner_id, week_start from all_types
)

select
    k.source_system,
    k.owner_id,
    w.owner_name,
    w.team,
    k.week_start,
    'all' as activity_type,
    coalesce(a.touches, 0) as touches,
    coalesce(a.deals_touched, 0) as deals_touched,
    coalesce(d.deals_owned, 0) as deals_owned
from week_owner as k
left join all_types as a
    on a.source_system = k.source_system and a.owner_id is not distinct from k.owner_id
    and a.week_start = k.week_start
left join owned as d
    on d.source_system = k.source_system and d.owner_id is not distinct from k.owner_id
    and d.week_start = k.week_start
left join {{ ref('int_owners_deduplicated') }} as w
    on w.source_system = k.source_system and w.owner_id = k.owner_id
union all
select
    t.source_system,
    t.owner_id,
    w.owner_name,
    w.team,
    t.week_start,
    t.activity_type,
    t.touches,
    t.deals_touched,
    coalesce(d.deals_owned, 0) as deals_owned
from by_type as t
left join owned as d
    on d.source_system = t.source_system and d.owner_id is not distinct from t.owner_id
    and d.week_start = t.week_start
left join {{ ref('int_owners_deduplicated') }} as w
    on w.source_system = t.source_system and w.owner_id = t.owner_id
