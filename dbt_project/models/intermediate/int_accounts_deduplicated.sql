-- One row per live account: the latest export of it wins; deleted accounts and accounts
-- merged into another (Salesforce MasterRecordId) are left out, so each counts once.
select
    source_system,
    account_id,
    account_name,
    industry,
    employees,
    annual_revenue,
    region,
    merged_into_id,
    is_deleted,
    _load_id,
    _row_number,
    _export_date
from ({{ ranked_versions(ref('stg_raw__accounts'), 'account_id') }})
where
    _version_rank = 1
    and not is_deleted
    and merged_into_id is null
