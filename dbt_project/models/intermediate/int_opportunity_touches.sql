-- One row per touch (activity) of a live opportunity up to the end of the as-of day, with
-- the deal's owner, the gap since the deal's previous touch and whether it came before
-- the deal's close. Materialised on its own because on DuckDB a window over tens of
-- millions of rows feeding a holistic aggregate (median) in the same query spills and
-- runs several times slower than the two steps apart.
--
-- Incremental on DuckDB: a daily run recomputes only the deals whose touches can have
-- changed since the last build (macros/touches.sql), each deal whole, so its gaps stay
-- a sequence. `oppwh run --full-refresh` rebuilds every deal and gives the same rows (a
-- test compares them, hash for hash). What the last build measured against (as-of day,
-- newest load, settings) is kept beside it, in int_opportunity_touches_state, and each
-- live deal's owner and close as the rows carry them, hashed, in
-- int_opportunity_touches_deals (with the number of the build that last recomputed the
-- deal, for int_opportunity_follow_up): a deal whose owner or close moved, gone or new is found
-- among a million deals, not by reading every stored touch (12 million at a million
-- deals: most of a next day's build). On Spark a plain table, rebuilt each run (as
-- int_activities_latest).
{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key=['source_system', 'opportunity_id'],
        on_schema_change='append_new_columns',
        pre_hook=([] if target.type == 'spark' else ["{{ touches_recomputed_table() }}"]),
        post_hook=([] if target.type == 'spark' else [
            "delete from {{ this }} where activity_id is null",
            "{{ touches_deals_table() }}",
            "create or replace table {{ side_table(this, 'state') }} as select "
            ~ "{{ as_of_end() }} as as_of_end, "
            ~ "(select max(_load_id) from {{ ref('int_activities_latest') }}) as max_load_id, "
            ~ "{{ touches_settings() }} as settings",
            "drop table if exists {{ touches_recomputed_relation() }}",
        ]),
    )
}}

with opportunities as (
    {{ touches_live_deals() }}
),

{% if is_incremental() %}
    recomputed_deals as (
        -- the deals whose touches can have changed (macros/touches.sql), written by the
        -- pre-hook into a temp table: a query that knows how few they are looks up their
        -- activities instead of reading all of them (and does so when they come first)
        select
            source_system,
            opportunity_id
        from {{ touches_recomputed_relation() }}
    ),

    activities as (
        select a.*
        from {{ touches_recomputed_relation() }} as r
        inner join {{ ref('int_activities_deduplicated') }} as a
            on {{ same_deal('a', 'r') }}
    ),
{% else %}
    activities as (
        select *
        from {{ ref('int_activities_deduplicated') }}
    ),
{% endif %}

touches as (
    select
        a.source_system,
        a.activity_id,
        a.opportunity_id,
        o.owner_id,
        a.activity_type,
        a.occurred_at,
        o.status in ('won', 'lost') and a.occurred_at <= o.closed_at as is_before_close,
        {{ week_start(local_date('a.occurred_at')) }} as week_start
    from activities as a
    inner join opportunities as o
        on {{ same_deal('a', 'o') }}
    where a.occurred_at < {{ as_of_end() }}
)

select
    source_system,
    opportunity_id,
    owner_id,
    activity_type,
    occurred_at,
    is_before_close,
    week_start,
    {{ days_between(
        'lag(occurred_at) over (partition by source_system, opportunity_id order by occurred_at, activity_id)',
        'occurred_at'
    ) }} as gap_days,
    activity_id,
    -- the deal's first touch of its week, and first of its type that week (weeks follow
    -- the touches' order): follow_up_weekly counts the deals touched as a sum of these
    -- flags, not a count(distinct) over tens of millions of touches. The type's previous
    -- touch is the row before in the deal's touches ordered by type first (partitioning
    -- by the type as well was a sort of its own, a third of the model's build)
    coalesce(lag(week_start) over (
        partition by source_system, opportunity_id order by occurred_at, activity_id
    ) != week_start, true) as is_first_of_week,
    coalesce(not (
        lag(activity_type) over by_type = activity_type
        and lag(week_start) over by_type = week_start
    ), true) as is_first_of_type_in_week
from touches
window
    by_type as (
        partition by source_system, opportunity_id order by activity_type, occurred_at, activity_id
    )
{% if is_incremental() %}
    union all
    -- one marker row per recomputed deal, so that delete+insert clears the deal's old rows
    -- even when it has no touch left (the post-hook deletes the markers)
    select
        source_system,
        opportunity_id,
        cast(null as varchar) as owner_id,
        cast(null as varchar) as activity_type,
        cast(null as timestamptz) as occurred_at,
        cast(null as boolean) as is_before_close,
        cast(null as date) as week_start,
        cast(null as double) as gap_days,
        cast(null as varchar) as activity_id,
        cast(null as boolean) as is_first_of_week,
        cast(null as boolean) as is_first_of_type_in_week
    from recomputed_deals
{% endif %}
