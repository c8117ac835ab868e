-- One row per live opportunity, touched or not: how often and how recently it is
-- followed up. Only activities up to the end of the as-of day count.
with opportunities as (
    select * from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
),

touches as (
    select * from {{ ref('int_opportunity_touches') }}
),

counts as (
    select
        source_system,
        opportunity_id,
        count(*) as activity_count,
        count(*) filter (where activity_type = 'call') as calls,
        count(*) filter (where activity_type = 'visit') as visits,
        count(*) filter (where activity_type = 'message') as messages,
        count(*) filter (where activity_type = 'email') as emails,
        count(*) filter (where activity_type = 'meeting') as meetings,
        count(*) filter (where activity_type = 'task') as tasks,
        count(*) filter (where activity_type = 'other') as other_touches,
        count(*) filter (where occurred_at >= {{ as_of_end() }} - interval 7 day) as touches_last_7_days,
        count(*) filter (where occurred_at >= {{ as_of_end() }} - interval 30 day) as touches_last_30_days,
        count(*) filter (where is_before_close) as touches_before_close,
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at,
        {{ round_half_up('max(gap_days)', 2) }} as max_gap_days
    from touches
    group by 1, 2
),

gap_ranks as (
    -- The median gap per deal from ranks (a sort DuckDB can spill), not median(): a
    -- holistic aggregate per deal holds every gap in memory and cannot spill.
    select
        source_system,
        opportunity_id,
        gap_days,
        row_number() over (partition by source_system, opportunity_id order by gap_days) as gap_rank,
        count(*) over (partition by source_system, opportunity_id) as gaps
    from touches
    where gap_days is not null
),

gap_medians as (
    -- the middle gap, or the two middle ones interpolated as median() does: lo + (hi - lo) / 2
    select
        source_system,
        opportunity_id,
        {{ round_half_up('min(gap_days) + (max(gap_days) - min(gap_days)) * 0.5', 2) }}
            as median_gap_days
    from gap_ranks
    where 2 * gap_rank between gaps and gaps + 2
    group by 1, 2
),

calendar as (
    select
        calendar_date,
        workday_index
    from {{ ref('int_calendar_days') }}
),

measured as (
    select
        o.opportunity_id,
        o.source_system,
        o.status,
        o.owner_id,
        o.created_at,
        {{ zero_when_missing('c', [
            'activity_count', 'calls', 'visits', 'messages', 'emails', 'meetings', 'tasks',
            'other_touches', 'touches_last_7_days', 'touches_last_30_days'
        ]) }},
        c.first_activity_at,
        c.last_activity_at,
        g.median_gap_days,
        c.max_gap_days,
        case
            when o.status in ('won', 'lost') then coalesce(c.touches_before_close, 0)
        end as touches_before_close,
        cast(
            (
                select as_of_day.workday_index from calendar as as_of_day
                where as_of_day.calendar_date = {{ as_of_date() }}
            )
            - coalesce(last_day.workday_index, created_day.workday_index) as bigint
        ) as business_days_since_last_touch,
        {{ round_half_up(days_between('o.created_at', 'c.first_activity_at'), 2) }} as first_touch_delay_days,
        {{ round_half_up(days_between('c.last_activity_at', as_of_end()), 2) }} as days_since_last_activity,
        greatest(
            {{ days_between(
                'o.created_at',
                "case when o.status = 'open' then " ~ as_of_end() ~ " else coalesce(o.closed_at, " ~ as_of_end() ~ ") end"
            ) }} / 7.0,
            1.0
        ) as open_weeks
    from opportunities as o
    left join counts as c
        on {{ same_deal('o', 'c') }}
    left join gap_medians as g
        on {{ same_deal('o', 'g') }}
    left join calendar as last_day on last_day.calendar_date = {{ local_date('c.last_activity_at') }}
    left join calendar as created_day on created_day.calendar_date = {{ local_date('o.created_at') }}
)

select
    opportunity_id,
    source_system,
    status,
    owner_id,
    created_at,
    activity_count,
    calls,
    visits,
    messages,
    emails,
    meetings,
    tasks,
    other_touches,
    touches_last_7_days,
    touches_last_30_days,
    first_activity_at,
    last_activity_at,
    median_gap_days,
    max_gap_days,
    touches_before_close,
    business_days_since_last_touch,
    first_touch_delay_days,
    days_since_last_activity,
    {{ round_half_up('activity_count / open_weeks', 2) }} as touches_per_open_week,
    status = 'open' and (
        {% if var('stale_basis') == 'business' -%}
            business_days_since_last_touch
        {%- else -%}
            coalesce(days_since_last_activity, {{ days_between('created_at', as_of_end()) }})
        {%- endif %}
    ) > {{ var('stale_days') }} as is_stale
from measured
