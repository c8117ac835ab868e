select
    source_system,
    nullif(trim(owner_id), '') as owner_id,
    nullif(trim(team), '') as team,
    month,
    target_amount,
    coalesce(upper(nullif(trim(currency), '')), {{ default_currency_for('source_system') }}) as currency,
    _load_id,
    _row_number,
    _export_date
from {{ source('raw', 'targets') }}
