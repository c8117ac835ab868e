-- One row per live opportunity, touched or not: how often and how recently it is
-- followed up. Only activities up to the end of the as-of day count. The counts and gaps
-- come from int_opportunity_follow_up, kept from day to day; what is measured against
-- the as-of day (days since, the last 7 and 30 days, stale) is worked out here.
with opportunities as (
    select * from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
),

history as (
    -- counts and gaps per deal, kept from day to day (int_opportunity_follow_up)
    select * from {{ ref('int_opportunity_follow_up') }}
),

recent as (
    -- the touches of the last 30 days before the end of the as-of day: what moves with it
    select
        source_system,
        opportunity_id,
        count(*) filter (where occurred_at >= {{ as_of_end() }} - interval 7 day) as touches_last_7_days,
        count(*) as touches_last_30_days
    from {{ ref('int_opportunity_touches') }}
    where occurred_at >= {{ as_of_end() }} - interval 30 day and occurred_at < {{ as_of_end() }}
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
        {{ zero_when_missing('h', [
            'activity_count', 'calls', 'visits', 'messages', 'emails', 'meetings', 'tasks',
            'other_touches'
        ]) }},
        {{ zero_when_missing('r', ['touches_last_7_days', 'touches_last_30_days']) }},
        h.first_activity_at,
        h.last_activity_at,
        h.median_gap_days,
        h.max_gap_days,
        case
            when o.status in ('won', 'lost') then coalesce(h.touches_before_close, 0)
        end as touches_before_close,
        cast(
            (
                select as_of_day.workday_index from calendar as as_of_day
                where as_of_day.calendar_date = {{ as_of_date() }}
            )
            - coalesce(last_day.workday_index, created_day.workday_index) as bigint
        ) as business_days_since_last_touch,
        {{ round_half_up(days_between('o.created_at', 'h.first_activity_at'), 2) }} as first_touch_delay_days,
        {{ round_half_up(days_between('h.last_activity_at', as_of_end()), 2) }} as days_since_last_activity,
        greatest(
            {{ days_between(
                'o.created_at',
                "case when o.status = 'open' then " ~ as_of_end() ~ " else coalesce(o.closed_at, " ~ as_of_end() ~ ") end"
            ) }} / 7.0,
            1.0
        ) as open_weeks
    from opportunities as o
    left join history as h
        on {{ same_deal('o', 'h') }}
    left join recent as r
        on {{ same_deal('o', 'r') }}
    left join calendar as last_day on last_day.calendar_date = {{ local_date('h.last_activity_at') }}
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
