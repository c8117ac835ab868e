-- One row per live opportunity: its follow-up history as counts and gaps, none of them
-- measured against the as-of day (follow_up_frequency adds those). Incremental on DuckDB:
-- a daily run recomputes only the deals whose touches int_opportunity_touches recomputed
-- since this model's last build (by the build numbers in int_opportunity_touches_deals:
-- 0 after a full build, then one more per incremental build),
-- so the median gaps are sorted for a few thousand deals, not for the tens of millions of
-- touches of every deal. `oppwh run --full-refresh` gives the same rows. On Spark a plain
-- table, rebuilt each run (as int_opportunity_touches).
{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key=['source_system', 'opportunity_id'],
        on_schema_change='fail',
        post_hook=([] if target.type == 'spark' else [
            "delete from {{ this }} where (source_system, opportunity_id) not in "
            ~ "(select live.source_system, live.opportunity_id from {{ touches_deals_relation() }} as live)",
        ]),
    )
}}

with deals as (
    {% if is_incremental() %}
        -- the live deals whose touches were recomputed by a build later than the last this
        -- model read; every deal when the numbers went back (the touches were built whole
        -- since, which numbers every deal 0)
        select
            source_system,
            opportunity_id,
            recomputed_in as touches_build
        from {{ touches_deals_relation() }}
        where
            recomputed_in > (select coalesce(max(built.touches_build), 0) from {{ this }} as built)
            or (select max(latest.recomputed_in) from {{ touches_deals_relation() }} as latest)
            < (select coalesce(max(built.touches_build), 0) from {{ this }} as built)
    {% else %}
        -- a full build reads every touch: it has consumed the touches' full build (0)
        select
            source_system,
            opportunity_id,
            cast(0 as bigint) as touches_build
        from {{ ref('int_opportunities_deduplicated') }}
        where not is_deleted
    {% endif %}
),

touches as (
    select t.*
    from deals as d
    inner join {{ ref('int_opportunity_touches') }} as t
        on {{ same_deal('t', 'd') }}
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
)

select
    d.source_system,
    d.opportunity_id,
    {{ zero_when_missing('c', [
        'activity_count', 'calls', 'visits', 'messages', 'emails', 'meetings', 'tasks',
        'other_touches', 'touches_before_close'
    ]) }},
    c.first_activity_at,
    c.last_activity_at,
    g.median_gap_days,
    c.max_gap_days,
    d.touches_build
from deals as d
left join counts as c
    on {{ same_deal('d', 'c') }}
left join gap_medians as g
    on {{ same_deal('d', 'g') }}
