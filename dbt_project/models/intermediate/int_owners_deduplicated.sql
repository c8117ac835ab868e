-- One row per owner: the latest export of it wins.
select
    source_system,
    owner_id,
    owner_name,
    team,
    manager_id,
    _load_id,
    _row_number,
    _export_date
from (
    select
        *,
        row_number() over (
            partition by source_system, owner_id
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__owners') }}
)
where _version_rank = 1
