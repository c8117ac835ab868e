select
    source_system,
    trim(account_id) as account_id,
    trim(account_name) as account_name,
    nullif(trim(industry), '') as industry,
    employees,
    annual_revenue,
    nullif(trim(region), '') as region,
    _load_id,
    _row_number,
    _export_date
from {{ source('raw', 'accounts') }}
