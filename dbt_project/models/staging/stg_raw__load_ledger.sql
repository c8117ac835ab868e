-- The ledger rows of loaded files (or sheets): what the models use it for. The rows of
-- files skipped or set aside change no mart (warehouse/build_state.py relies on it).
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
where status = 'loaded'
