-- One row per account: the latest export of it wins.
select * exclude (_version_rank)
from (
    select
        *,
        row_number() over (
            partition by source_system, account_id
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__accounts') }}
)
where _version_rank = 1
