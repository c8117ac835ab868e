select
    source_system,
    trim(opportunity_id) as opportunity_id,
    trim(stage) as stage,
    entered_at,
    _load_id,
    _row_number
from {{ source('raw', 'stage_history') }}
