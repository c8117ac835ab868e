{#- int_opportunity_touches' incremental builds: the deals whose touches can have changed
    since the last build, each recomputed whole (so its gaps stay a sequence). The model's
    pre-hook writes them into a temp table: read from a table, DuckDB knows how few they
    are and looks up their activities; from a CTE it read every activity first (10 of a
    next day's 15 s at a million deals). -#}

{#- The live deals and what the touches carry of them (the model and its pre-hook alike). -#}
{% macro touches_live_deals() -%}
    select
        source_system,
        opportunity_id,
        owner_id,
        status,
        closed_at
    from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
{%- endmacro %}

{% macro touches_recomputed_relation() -%}
    {{ this.identifier }}_recomputed
{%- endmacro %}

{% macro touches_recomputed_table() -%}
    {%- if not is_incremental() -%}
        drop table if exists {{ touches_recomputed_relation() }}
    {%- else -%}
        {%- set state_table = side_table(this, 'state') -%}
        {%- set deals_table = side_table(this, 'deals') -%}
        {%- set has_state = existing_side_table(this, 'state') is not none -%}
        {%- set has_deals = has_state and existing_side_table(this, 'deals') is not none %}
create or replace temp table {{ touches_recomputed_relation() }} as
with opportunities as (
    {{ touches_live_deals() }}
)
{% if has_state -%}
,

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
)

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
    {% if has_deals %}
        -- deals no longer live, new (their touches may have come first), or whose owner
        -- or close moved (the rows carry both)
        select
            coalesce(o.source_system, d.source_system) as source_system,
            coalesce(o.opportunity_id, d.opportunity_id) as opportunity_id
        from opportunities as o
        full outer join {{ deals_table }} as d
            on {{ same_deal('o', 'd') }}
        where
            o.opportunity_id is null
            or d.opportunity_id is null
            or d.carried_hash != {{ deal_carried_hash('o') }}
    {% else %}
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
    {% endif %}
{%- else %}
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
{%- endif %}
    {%- endif %}
{%- endmacro %}

{#- What int_opportunity_touches' rows carry of a deal (its owner, and its status and close
    for is_before_close), hashed: a deal whose hash moved since the last build is rebuilt. -#}
{% macro deal_carried_hash(alias=none) -%}
    {%- set p = alias ~ '.' if alias else '' -%}
    hash({{ p }}owner_id, {{ p }}status, {{ p }}closed_at)
{%- endmacro %}

{#- The side table of each live deal's carried hash and the number of the touches build
    that last recomputed it (`recomputed_in`): int_opportunity_follow_up recomputes the
    deals whose number is above the highest it has consumed, so a build it missed (it
    failed, or was not selected) is caught up by the next. -#}
{% macro touches_deals_relation() -%}
    {{ return(side_table(ref('int_opportunity_touches'), 'deals')) }}
{%- endmacro %}

{#- Post-hook of int_opportunity_touches: the deals table brought up to date. A build that
    recomputed only some deals replaces their rows (a deal gone is deleted, a new one
    added) with the next build number (one above the highest in the table, read before any
    row is deleted), and the million others stay as they are; a full build (or the first)
    writes it anew and numbers every deal 0, so that int_opportunity_follow_up's full
    build, which reads every touch, has consumed it without reading this table. -#}
{% macro touches_deals_table() -%}
    {%- set deals_table = side_table(this, 'deals') -%}
    {%- set existing = existing_side_table(this, 'deals') -%}
    {%- set numbered = existing is not none and 'recomputed_in' in (
        adapter.get_columns_in_relation(existing) | map(attribute='name') | list
    ) -%}
    {#- a build that recomputed only some deals left their list in the temp table (a full
        build, or the first, dropped it) -#}
    {%- set partial = execute and numbered and run_query(
        "select count(*) from duckdb_tables() where temporary and table_name = '"
        ~ touches_recomputed_relation() ~ "'"
    ).columns[0].values()[0] > 0 %}
{% if partial -%}
    {%- set next_build = run_query(
        "select coalesce(max(recomputed_in), 0) + 1 from " ~ deals_table
    ).columns[0].values()[0] -%}
delete from {{ deals_table }}
where (source_system, opportunity_id) in (
    select r.source_system, r.opportunity_id from {{ touches_recomputed_relation() }} as r
);
insert into {{ deals_table }}
select
    o.source_system,
    o.opportunity_id,
    {{ deal_carried_hash('o') }} as carried_hash,
    cast({{ next_build }} as bigint) as recomputed_in
from {{ ref('int_opportunities_deduplicated') }} as o
inner join {{ touches_recomputed_relation() }} as r
    on {{ same_deal('o', 'r') }}
where not o.is_deleted
{%- else -%}
create or replace table {{ deals_table }} as
select
    source_system,
    opportunity_id,
    {{ deal_carried_hash() }} as carried_hash,
    cast(0 as bigint) as recomputed_in
from {{ ref('int_opportunities_deduplicated') }}
where not is_deleted
{%- endif %}
{%- endmacro %}
