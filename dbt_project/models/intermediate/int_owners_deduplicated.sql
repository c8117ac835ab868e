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
from ({{ ranked_versions(ref('stg_raw__owners'), 'owner_id') }})
where _version_rank = 1
