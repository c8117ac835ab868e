-- Every known stage change: the exported stage history (deleted rows left out) and, for
-- opportunities whose source exports only the current state, the changes between
-- successive dated exports (snapshots). A deal's first snapshot counts from its creation;
-- a later change counts from the start of the export day it was first seen on.
-- Changes after the as-of day are left out: a rerun for a past day sees that day's stages.
with explicit as (
    select
        source_system,
        opportunity_id,
        stage,
        entered_at
    from {{ ref('stg_raw__stage_history') }}
    where not is_deleted and entered_at < {{ as_of_end() }}
),

snapshots as (
    select
        *,
        row_number() over (
            partition by source_system, opportunity_id, snapshot_date
            order by _load_id desc, _row_number desc
        ) as _rank
    from {{ ref('stg_raw__opportunity_snapshots') }}
    where stage is not null and snapshot_date <= {{ as_of_date() }}
),

daily as (
    select
        source_system,
        opportunity_id,
        snapshot_date,
        stage,
        created_at,
        lag(stage) over (
            partition by source_system, opportunity_id order by snapshot_date
        ) as previous_stage,
        row_number() over (
            partition by source_system, opportunity_id order by snapshot_date
        ) as snapshot_number
    from snapshots
    where _rank = 1
),

derived as (
    select
        source_system,
        opportunity_id,
        stage,
        case
            when snapshot_number = 1 and created_at is not null then created_at
            else {{ local_timestamp_to_tz('cast(snapshot_date as timestamp)') }}
        end as entered_at
    from daily
    where previous_stage is null or previous_stage <> stage
)

select
    source_system,
    opportunity_id,
    stage,
    entered_at,
    'history' as derived_from
from explicit
union all
select
    d.source_system,
    d.opportunity_id,
    d.stage,
    d.entered_at,
    'snapshots' as derived_from
from derived as d
where not exists (
    select 1 from explicit as e
    where e.source_system = d.source_system and e.opportunity_id = d.opportunity_id
)
