{{ config(materialized="view") }}

-- One row per live activity, its type mapped onto the canonical set (call, visit,
-- message, email, meeting, task, other) with the source's own word kept. The versions
-- are resolved incrementally in int_activities_latest (the latest export of each
-- activity wins); deleted activities are left out here; identical rows without an id
-- arrive with the same row-hash id and so count once.
with type_map as (
    select
        lower(source_word) as source_word,
        activity_type
    from {{ ref('activity_type_map') }}
)

select
    a.source_system,
    a.activity_id,
    a.opportunity_id,
    a.account_id,
    a.owner_id,
    coalesce(m.activity_type, 'other') as activity_type,
    a.activity_type_raw,
    a.occurred_at,
    a.duration_seconds,
    a.subject
from {{ ref('int_activities_latest') }} as a
left join type_map as m on m.source_word = lower(a.activity_type_raw)
where not a.is_deleted
