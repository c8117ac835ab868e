select
    source_system,
    trim(account_id) as account_id,
    trim(account_name) as account_name,
    nullif(trim(industry), '') as industry,
    employees,
    annual_revenue,
    nullif(trim(region), '') as region,
    nullif(trim(merged_into_id), '') as merged_into_id,
    coalesce(is_deleted, false) as is_deleted,
    _load_id,
    _row_number,
    _export_date
from {{ source('raw', 'accounts') }}
