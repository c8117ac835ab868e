-- One row per touch (activity) of a live opportunity up to the end of the as-of day, with
-- the deal's owner, the gap since the deal's previous touch and whether it came before
-- the deal's close. Materialised on its own because on DuckDB a window over tens of
-- millions of rows feeding a holistic aggregate (median) in the same query spills and
-- runs several times slower than the two steps apart.
with opportunities as (
    select
        source_system,
        opportunity_id,
        owner_id,
        status,
        closed_at
    from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
),

touches as (
    select
        a.source_system,
        a.opportunity_id,
        o.owner_id,
        a.activity_type,
        a.occurred_at,
        o.status in ('won', 'lost') and a.occurred_at <= o.closed_at as is_before_close
    from {{ ref('int_activities_deduplicated') }} as a
    inner join opportunities as o
        on {{ same_deal('a', 'o') }}
    where a.occurred_at < {{ as_of_end() }}
)

select
    *,
    {{ week_start(local_date('occurred_at')) }} as week_start,
    {{ days_between(
        'lag(occurred_at) over (partition by source_system, opportunity_id order by occurred_at)',
        'occurred_at'
    ) }} as gap_days
from touches
