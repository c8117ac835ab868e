-- One row per touch (activity) of a live opportunity up to the end of the as-of day, with
-- the deal's owner, the gap since the deal's previous touch and whether it came before
-- the deal's close. Materialised on its own because on DuckDB a window over tens of
-- millions of rows feeding a holistic aggregate (median) in the same query spills and
-- runs several times slower than the two steps apart.
--
-- Incremental on DuckDB: a daily run recomputes only the deals whose touches can have
-- changed since the last build (recomputed_deals below), each deal whole, so its gaps stay
-- a sequence. `oppwh run --full-refresh` rebuilds every deal and gives the same rows (a
-- test compares them, hash for hash). What the last build measured against (as-of day,
-- newest load, settings) is kept beside it, in int_opportunity_touches_state. On Spark a
-- plain table, rebuilt each run (as int_activities_latest).
{% set state_table = this.schema ~ '.' ~ this.identifier ~ '_state' %}
{% set has_state = is_incremental() and adapter.get_relation(
    database=this.database, schema=this.schema, identifier=this.identifier ~ '_state'
) is not none %}
{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key=['source_system', 'opportunity_id'],
        on_schema_change='append_new_columns',
        post_hook=([] if target.type == 'spark' else [
            "delete from {{ this }} where activity_id is null",
            "create or replace table {{ this.schema }}.{{ this.identifier }}_state as select "
            ~ "{{ as_of_end() }} as as_of_end, "
            ~ "(select max(_load_id) from {{ ref('int_activities_latest') }}) as max_load_id, "
            ~ "{{ touches_settings() }} as settings",
        ]),
    )
}}

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

{% if has_state %}
    last_build as (
        select
            as_of_end,
            max_load_id,
            settings
        from {{ state_table }}
    ),

    new_versions as (
        -- activities of the loads newer than the last build (their latest version)
        select
            source_system,
            activity_id,
            opportunity_id
        from {{ ref('int_activities_latest') }}
        where _load_id > (select coalesce(last_build.max_load_id, -1) from last_build)
    ),

    recomputed_deals as (
        -- every deal, when a setting the rows depend on changed (time zone, type map)
        select
            source_system,
            opportunity_id
        from opportunities
        where (select last_build.settings from last_build) is distinct from {{ touches_settings() }}
        union
        -- deals given an activity, or holding one that moved or was deleted
        select
            source_system,
            opportunity_id
        from new_versions
        where opportunity_id is not null
        union
        select
            t.source_system,
            t.opportunity_id
        from {{ this }} as t
        inner join new_versions as n
            on t.source_system = n.source_system and t.activity_id = n.activity_id
        union
        -- deals touched between the last build's as-of day and this one's (a rerun for a past
        -- day goes back)
        select
            source_system,
            opportunity_id
        from {{ ref('int_activities_deduplicated') }}
        where
            occurred_at >= least((select last_build.as_of_end from last_build), {{ as_of_end() }})
            and occurred_at < greatest((select last_build.as_of_end from last_build), {{ as_of_end() }})
        union
        -- deals no longer live, or whose owner or close moved (the rows carry both)
        select
            t.source_system,
            t.opportunity_id
        from {{ this }} as t
        left join opportunities as o
            on {{ same_deal('t', 'o') }}
        where
            o.opportunity_id is null
            or o.owner_id is distinct from t.owner_id
            or (o.status in ('won', 'lost') and t.occurred_at <= o.closed_at)
            is distinct from t.is_before_close
    ),
{% elif is_incremental() %}
    recomputed_deals as (
        -- a table built before its state was kept: every deal, the old ones' rows cleared
        select
            source_system,
            opportunity_id
        from opportunities
        union
        select
            source_system,
            opportunity_id
        from {{ this }}
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
        o.status in ('won', 'lost') and a.occurred_at <= o.closed_at as is_before_close
    from {{ ref('int_activities_deduplicated') }} as a
    inner join opportunities as o
        on {{ same_deal('a', 'o') }}
    {% if is_incremental() %}
        inner join recomputed_deals as r
            on {{ same_deal('a', 'r') }}
    {% endif %}
    where a.occurred_at < {{ as_of_end() }}
)

select
    source_system,
    opportunity_id,
    owner_id,
    activity_type,
    occurred_at,
    is_before_close,
    {{ week_start(local_date('occurred_at')) }} as week_start,
    {{ days_between(
        'lag(occurred_at) over (partition by source_system, opportunity_id order by occurred_at, activity_id)',
        'occurred_at'
    ) }} as gap_days,
    activity_id
from touches
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
        cast(null as varchar) as activity_id
    from recomputed_deals
{% endif %}
