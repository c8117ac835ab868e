select
    load_id,
    file_name,
    sheet,
    export_date,
    format_name,
    source_system,
    table_name,
    export_kind,
    status,
    rows_read,
    rows_loaded,
    rows_rejected,
    as_of
from {{ source('raw', 'load_ledger') }}
