select
    source_system,
    trim(opportunity_id) as opportunity_id,
    trim(stage) as stage,
    entered_at,
    coalesce(is_deleted, false) as is_deleted,
    _load_id,
    _row_number
from {{ source('raw', 'stage_history') }}
