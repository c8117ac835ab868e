-- One row per opportunity: the latest export of it wins (export date, then load, then row).
-- Status is the source's word mapped to open/won/lost; when the word is unknown or
-- missing, a closing stage decides (赢单 -> won), else the deal is open.
with ranked as (
    select
        *,
        row_number() over (
            partition by source_system, opportunity_id
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__opportunities') }}
),

stages as (
    select * from {{ ref('stages') }}
)

select
    r.source_system,
    r.opportunity_id,
    r.opportunity_name,
    r.account_id,
    r.owner_id,
    r.stage,
    s.stage_order,
    coalesce(
        r.status,
        case when s.is_closed and s.is_won then 'won' when s.is_closed then 'lost' end,
        'open'
    ) as status,
    r.status_raw,
    r.amount,
    r.currency,
    r.created_at,
    r.closed_at,
    r.expected_close_date,
    r.loss_reason,
    r.lead_source,
    r.is_deleted,
    r.extra,
    r._file_name,
    r._export_date
from ranked as r
left join stages as s on s.stage = r.stage
where r._version_rank = 1
