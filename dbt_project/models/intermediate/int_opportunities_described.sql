-- One row per live opportunity (deleted ones left out): its state as of the as-of day with
-- its account and owner, and its cycle time once closed. None of it moves with the as-of
-- day itself or with the activities, so the marts that read only this (cycle time, loss
-- reasons, the funnel) are left as they are on a day that brings neither a new export of
-- deals nor a stage change (warehouse/node_state.py); `opportunities` adds the figures
-- that move with the day and the follow-up summary.
with opportunities as (
    select * from {{ ref('int_opportunities_deduplicated') }}
    where not is_deleted
),

accounts as (
    select * from {{ ref('int_accounts_deduplicated') }}
),

owners as (
    select * from {{ ref('int_owners_deduplicated') }}
)

select
    o.*,
    w.owner_name,
    w.team,
    -- the account export's, else what the deal export wrote (a 商机 form's 客户名称, 所属行业)
    coalesce(a.account_name, o.deal_account_name) as account_name,
    coalesce(a.industry, o.deal_industry) as industry,
    a.employees,
    case
        when o.status in ('won', 'lost') and o.closed_at is not null
            then {{ round_half_up(days_between('o.created_at', 'o.closed_at'), 2) }}
    end as cycle_time_days
from opportunities as o
left join accounts as a on o.source_system = a.source_system and o.account_id = a.account_id
left join owners as w on o.source_system = w.source_system and o.owner_id = w.owner_id
