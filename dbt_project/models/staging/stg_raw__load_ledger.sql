-- The ledger rows of loaded deal exports (files or sheets): what the models use it for
-- (the latest full export per source). The rows of other tables' files, and of files
-- skipped or set aside, change no model reading it: warehouse/build_state.py ROWS_READ
-- measures these rows alone, so a day of new activities leaves the deals' models kept.
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
where status = 'loaded' and table_name = 'opportunities'
