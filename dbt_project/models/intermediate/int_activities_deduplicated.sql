-- One row per activity (the latest export of it wins), its type mapped onto the
-- canonical set (call, visit, message, email, meeting, task, other) with the
-- source's own word kept. Deleted activities are left out; identical rows without an
-- id arrive with the same row-hash id and so count once.
with ranked as (
    select
        *,
        row_number() over (
            partition by source_system, activity_id
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__activities') }}
),

type_map as (
    select lower(source_word) as source_word, activity_type from {{ ref('activity_type_map') }}
)

select
    r.source_system,
    r.activity_id,
    r.opportunity_id,
    r.account_id,
    r.owner_id,
    coalesce(m.activity_type, 'other') as activity_type,
    r.activity_type_raw,
    r.occurred_at,
    r.duration_seconds,
    r.subject
from ranked as r
left join type_map as m on m.source_word = lower(r.activity_type_raw)
where r._version_rank = 1
  and not r.is_deleted
