-- Stage visits of every live opportunity, in time order.
--   * history rows of open stages up to the close; consecutive rows with the same
--     stage are one visit;
--   * a deal with no history gets one visit of its current stage from creation;
--   * a closed deal's last visit is its closing stage (won/lost), entered at the close;
--     a close given as a day (Salesforce CloseDate: local midnight) covers that whole
--     day, so a stage entered later that day is kept and the closing visit starts at
--     that entry instead: no visit is ever lost.
--
-- Incremental on DuckDB: a build recomputes only the deals whose own inputs moved
-- (macros/stage_visits.sql), each deal whole; `oppwh run --full-refresh` rebuilds every
-- deal and gives the same rows (a test compares them). On Spark a plain table.
{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=([] if target.type == 'spark' else ["{{ visits_pre_hook() }}"]),
        post_hook=([] if target.type == 'spark' else ["{{ visits_post_hook() }}"]),
    )
}}

with opportunities as (
    select
        o.*,
        -- the last instant a stage change can belong to the open part of the deal
        case
            when o.closed_at = {{ local_timestamp_to_tz("cast(" ~ local_date('o.closed_at') ~ " as timestamp)") }}
                then {{ local_timestamp_to_tz("cast(" ~ local_date('o.closed_at') ~ " + 1 as timestamp)") }}
            else o.closed_at
        end as open_until
    from {{ ref('int_opportunities_deduplicated') }} as o
    {% if is_incremental() -%}
        -- the deals whose inputs moved, their old visits cleared by the pre-hook
        inner join {{ visits_recomputed_relation() }} as r
            on {{ same_deal('o', 'r') }}
    {%- endif %}
    where not o.is_deleted
),

stages as (
    select * from {{ ref('int_stages_resolved') }}
),

history as (
    select distinct
        h.source_system,
        h.opportunity_id,
        h.stage,
        h.entered_at
    from {{ ref('int_stage_history_unioned') }} as h
    inner join opportunities as o
        on {{ same_deal('h', 'o') }}
),

open_stage_rows as (
    select
        h.source_system,
        h.opportunity_id,
        h.stage,
        h.entered_at,
        false as is_closing
    from history as h
    inner join opportunities as o
        on {{ same_deal('h', 'o') }}
    left join stages as s on h.source_system = s.source_system and h.stage = s.stage
    where
        not coalesce(s.is_closed, false)
        and (o.status = 'open' or o.closed_at is null or h.entered_at <= o.open_until)
),

last_open_entry as (
    select
        source_system,
        opportunity_id,
        max(entered_at) as entered_at
    from open_stage_rows
    group by 1, 2
),

closing_history as (
    -- the latest change into a closing stage (the first stage name on a tie)
    select
        source_system,
        opportunity_id,
        entered_at,
        stage
    from (
        select
            h.source_system,
            h.opportunity_id,
            h.entered_at,
            h.stage,
            row_number() over (
                partition by h.source_system, h.opportunity_id order by h.entered_at desc, h.stage asc
            ) as closing_rank
        from history as h
        inner join stages as s on h.source_system = s.source_system and h.stage = s.stage
        where s.is_closed
    ) as ranked
    where closing_rank = 1
),

closing_rows as (
    select
        o.source_system,
        o.opportunity_id,
        coalesce(
            case when s.is_closed then o.stage end,
            c.stage,
            o.status
        ) as stage,
        -- never before the last open-stage entry (a close given as a day)
        case
            when e.entered_at > coalesce(o.closed_at, c.entered_at) then e.entered_at
            else coalesce(o.closed_at, c.entered_at)
        end as entered_at,
        true as is_closing
    from opportunities as o
    left join stages as s on o.source_system = s.source_system and o.stage = s.stage
    left join closing_history as c
        on {{ same_deal('o', 'c') }}
    left join last_open_entry as e
        on {{ same_deal('o', 'e') }}
    where
        o.status in ('won', 'lost')
        and coalesce(o.closed_at, c.entered_at) is not null
),

without_history as (
    select
        o.source_system,
        o.opportunity_id,
        o.stage,
        o.created_at as entered_at,
        false as is_closing
    from opportunities as o
    left join stages as s on o.source_system = s.source_system and o.stage = s.stage
    where not exists (
        select 1 from open_stage_rows as r
        where r.source_system = o.source_system and r.opportunity_id = o.opportunity_id
    )
    and o.stage is not null
    and not coalesce(s.is_closed, false)
),

all_rows as (
    select * from open_stage_rows
    union all
    select * from without_history
    union all
    select * from closing_rows
),

with_previous as (
    select
        *,
        lag(stage) over (
            partition by source_system, opportunity_id order by entered_at nulls last, is_closing, stage
        ) as previous_row_stage
    from all_rows
),

visits as (
    select
        source_system,
        opportunity_id,
        stage,
        entered_at,
        is_closing
    from with_previous
    where previous_row_stage is null or previous_row_stage <> stage
)

select
    v.source_system,
    v.opportunity_id,
    v.stage,
    s.stage_order,
    v.is_closing,
    v.entered_at,
    row_number() over (
        partition by v.source_system, v.opportunity_id order by v.entered_at nulls last, v.is_closing, v.stage
    ) as visit_number,
    lead(v.entered_at) over (
        partition by v.source_system, v.opportunity_id order by v.entered_at nulls last, v.is_closing, v.stage
    ) as exited_at,
    lag(s.stage_order) over (
        partition by v.source_system, v.opportunity_id order by v.entered_at nulls last, v.is_closing, v.stage
    ) as previous_stage_order,
    lag(v.stage) over (
        partition by v.source_system, v.opportunity_id order by v.entered_at nulls last, v.is_closing, v.stage
    ) as previous_stage,
    -- the deal's current visit (the lifecycle mart's is_current): known here, where the
    -- visits are numbered, so the mart rebuilt each day needs no window over every visit
    lead(true) over (
        partition by v.source_system, v.opportunity_id order by v.entered_at nulls last, v.is_closing, v.stage
    ) is null as is_last_visit
from visits as v
left join stages as s on v.source_system = s.source_system and v.stage = s.stage
