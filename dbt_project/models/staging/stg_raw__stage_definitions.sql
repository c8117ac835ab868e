select
    source_system,
    trim(stage) as stage,
    stage_order,
    coalesce(is_closed, false) as is_closed,
    coalesce(is_won, false) as is_won,
    default_probability,
    _load_id
from {{ source('raw', 'stage_definitions') }}
