-- A table on Spark: scoring reads it (close-date pushes) from the Parquet files Spark writes.
{{ config(materialized=('table' if target.type == 'spark' else 'view')) }}

select
    source_system,
    trim(opportunity_id) as opportunity_id,
    snapshot_date,
    nullif(trim(owner_id), '') as owner_id,
    nullif(trim(stage), '') as stage,
    {{ normalise_status('status') }} as status,
    amount,
    coalesce(upper(nullif(trim(currency), '')), {{ default_currency_for('source_system') }}) as currency,
    created_at,
    closed_at,
    expected_close_date,
    coalesce(is_deleted, false) as is_deleted,
    _export_date,
    _load_id,
    _row_number
from {{ source('raw', 'opportunity_snapshots') }}
