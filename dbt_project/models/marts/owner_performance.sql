-- One row per owner (and one for deals without an owner): the load they carry against
-- how they convert, how they follow up, and how completely they fill in their deals.
-- `open_deals_vs_average` above 2 with a win rate under half the team's flags the rep
-- chasing twice the average number of deals at a low win rate.
with deals as (
    select * from {{ ref('opportunities') }}
),

touches as (
    select
        source_system,
        opportunity_id,
        activity_count,
        touches_per_open_week
    from {{ ref('follow_up_frequency') }}
),

per_owner as (
    select
        d.source_system,
        d.owner_id,
        count(*) as deals,
        count(*) filter (where d.status = 'open') as open_deals,
        sum(d.amount_reporting) filter (where d.status = 'open') as open_amount,
        count(*) filter (where d.status = 'won') as won_deals,
        count(*) filter (where d.status = 'lost') as lost_deals,
        sum(d.amount_reporting) filter (where d.status = 'won') as won_amount,
        sum(d.amount_reporting) filter (where d.status = 'lost') as lost_amount,
        count(*) filter (where d.is_stale) as stale_deals,
        {{ round_half_up("avg(t.activity_count)", 2) }} as touches_per_deal,
        {{ round_half_up("avg(cast(t.touches_per_open_week as decimal(18, 2))) filter (where d.status = 'open')", 2) }}
            as touches_per_open_deal_week,
        {{ round_half_up("median(d.cycle_time_days) filter (where d.status = 'won')", 2) }}
            as median_won_cycle_days,
        {{ round_half_up("avg(case when d.amount is not null then 1 else 0 end)", 4) }} as fill_rate_amount,
        {{ round_half_up("avg(case when d.expected_close_date is not null then 1 else 0 end)", 4) }}
            as fill_rate_expected_close_date,
        {{ round_half_up("avg(case when d.industry is not null then 1 else 0 end)", 4) }}
            as fill_rate_industry,
        {{ round_half_up("avg(case when d.loss_reason is not null then 1 else 0 end) filter (where d.status = 'lost')", 4) }}
            as fill_rate_loss_reason
    from deals as d
    left join touches as t
        on {{ same_deal('d', 't') }}
    group by 1, 2
),

rated as (
    select
        *,
        {{ round_half_up("won_deals / nullif(won_deals + lost_deals, 0)", 4) }} as win_rate,
        {{ round_half_up("won_amount / nullif(coalesce(won_amount, 0) + coalesce(lost_amount, 0), 0)", 4) }}
            as win_rate_amount,
        {{ round_half_up(
            "(coalesce(fill_rate_amount, 0) + coalesce(fill_rate_expected_close_date, 0)"
            ~ " + coalesce(fill_rate_industry, 0) + coalesce(fill_rate_loss_reason, fill_rate_amount, 0)) / 4.0",
            4
        ) }} as data_completeness
    from per_owner
),

team as (
    select
        source_system,
        avg(open_deals) filter (where owner_id is not null) as avg_open_deals,
        sum(won_deals) / nullif(sum(won_deals + lost_deals), 0) as team_win_rate
    from rated
    group by 1
)

select
    r.owner_id,
    r.source_system,
    coalesce(o.owner_name, case when r.owner_id is null then '(no owner / 无负责人)' end) as owner_name,
    o.team,
    r.deals,
    r.open_deals,
    r.open_amount,
    r.won_deals,
    r.lost_deals,
    r.won_amount,
    r.lost_amount,
    r.win_rate,
    r.win_rate_amount,
    r.stale_deals,
    r.touches_per_deal,
    r.touches_per_open_deal_week,
    r.median_won_cycle_days,
    r.fill_rate_amount,
    r.fill_rate_expected_close_date,
    r.fill_rate_industry,
    r.fill_rate_loss_reason,
    r.data_completeness,
    {{ round_half_up("r.open_deals / nullif(t.avg_open_deals, 0)", 2) }} as open_deals_vs_average,
    coalesce(
        r.owner_id is not null
        and r.open_deals >= 2 * t.avg_open_deals
        and coalesce(r.win_rate, 0) < 0.5 * t.team_win_rate,
        false
    ) as is_overloaded_low_win
from rated as r
left join team as t on r.source_system = t.source_system
left join {{ ref('int_owners_deduplicated') }} as o
    on r.source_system = o.source_system and r.owner_id = o.owner_id
