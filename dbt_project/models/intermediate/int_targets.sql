-- One row per target: an owner's or a team's month, the latest export of it winning (a
-- target names an owner or a team, not a source). In the reporting currency.
with ranked as (
    select
        *,
        row_number() over (
            partition by coalesce(owner_id, ''), coalesce(team, ''), month
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ ref('stg_raw__targets') }}
    where owner_id is not null or team is not null
),

{{ reporting_rate_ctes() }}

select
    case when r.owner_id is not null then 'owner' else 'team' end as target_level,
    r.owner_id,
    case when r.owner_id is null then r.team end as team,
    r.month,
    r.target_amount,
    r.currency,
    {{ amount_in_reporting_currency('r.target_amount', 'r.currency', 'fx.rate_to_cny') }}
        as target_amount_reporting,
    r._load_id
from ranked as r
left join rates as fx on r.currency = fx.currency
where r._version_rank = 1
