select
    source_system,
    trim(activity_id) as activity_id,
    nullif(trim(opportunity_id), '') as opportunity_id,
    nullif(trim(account_id), '') as account_id,
    nullif(trim(owner_id), '') as owner_id,
    nullif(trim(activity_type), '') as activity_type_raw,
    occurred_at,
    duration_seconds,
    subject,
    coalesce(is_deleted, false) as is_deleted,
    _load_id,
    _row_number,
    _export_date
from {{ source('raw', 'activities') }}
