-- Lost deals per month (business time zone) and reason category, with each category's
-- share of the month's losses and the month's share of losses with no reason at all.
with lost as (
    select * from {{ ref('loss_reasons') }}
),

monthly as (
    select
        lost_month,
        count(*) as month_lost_deals,
        avg(case when loss_reason_category = 'unspecified' then 1 else 0 end) as share_unspecified
    from lost
    group by 1
)

select
    l.lost_month,
    l.loss_reason_category,
    count(*) as lost_deals,
    sum(l.amount_reporting) as lost_amount,
    {{ round_half_up('count(*) / max(m.month_lost_deals)', 4) }} as share_of_lost,
    {{ round_half_up('max(m.share_unspecified)', 4) }} as share_unspecified
from lost as l
inner join monthly as m on l.lost_month = m.lost_month
group by 1, 2
