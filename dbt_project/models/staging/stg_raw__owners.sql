select
    source_system,
    trim(owner_id) as owner_id,
    trim(owner_name) as owner_name,
    nullif(trim(team), '') as team,
    nullif(trim(manager_id), '') as manager_id,
    _load_id,
    _row_number,
    _export_date
from {{ source('raw', 'owners') }}
