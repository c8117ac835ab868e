-- The forecast-review table: one row per week (Monday start, business time zone) from the
-- first deal to the as-of week. Counts and amounts (reporting currency) of the pipeline at
-- the start and end of the week, and what moved in it: created, advanced, slipped back,
-- close date pushed (seen between successive current-state exports), won, lost. The
-- probability-weighted pipeline values each open deal at its stage's probability at the
-- end of the week. Built from events (+ when a deal opens or enters a stage, - when it
-- closes or leaves), so its cost follows the number of changes, not deals x weeks.
with deals as (
    -- the deals' own description, not the opportunities mart: that holds figures counted
    -- to the as-of day (ages, days since), so it is built again every day, and this mart
    -- would be with it
    select * from {{ ref('int_opportunities_described') }}
),

weeks as (
    select distinct week_start
    from {{ ref('int_calendar_days') }}
    where
        calendar_date <= {{ as_of_date() }}
        and week_start >= (select {{ week_start("min(" ~ local_date('created_at') ~ ")") }} from deals)
),

open_events as (
    select
        {{ week_start(local_date('created_at')) }} as week_start,
        1 as deals,
        coalesce(amount_reporting, 0) as amount
    from deals
    union all
    -- a deal recorded as closed before it was created (flagged is_closed_before_created)
    -- leaves the pipeline in the week it entered it, never before
    select
        {{ week_start(local_date('greatest(closed_at, created_at)')) }} as week_start,
        -1 as deals,
        -coalesce(amount_reporting, 0) as amount
    from deals
    where status in ('won', 'lost') and closed_at is not null
),

weighted_events as (
    select
        {{ week_start(local_date('l.entered_at')) }} as week_start,
        cast(coalesce(d.amount_reporting, 0) * coalesce(s.default_probability, 0) / 100.0 as decimal(18, 2))
            as weighted
    from {{ ref('opportunity_lifecycle') }} as l
    inner join deals as d on {{ same_deal('l', 'd') }}
    left join {{ ref('int_stages_resolved') }} as s on l.source_system = s.source_system and l.stage = s.stage
    where not l.is_closing_stage
    union all
    select
        {{ week_start(local_date('l.exited_at')) }} as week_start,
        -cast(coalesce(d.amount_reporting, 0) * coalesce(s.default_probability, 0) / 100.0 as decimal(18, 2))
            as weighted
    from {{ ref('opportunity_lifecycle') }} as l
    inner join deals as d on {{ same_deal('l', 'd') }}
    left join {{ ref('int_stages_resolved') }} as s on l.source_system = s.source_system and l.stage = s.stage
    where not l.is_closing_stage and l.exited_at is not null
),

moves as (
    select
        {{ week_start(local_date('entered_at')) }} as week_start,
        count(*) filter (where not is_closing_stage and not is_regression and visit_number > 1) as advanced,
        count(*) filter (where is_regression) as slipped_back
    from {{ ref('opportunity_lifecycle') }}
    group by 1
),

pushes as (
    select
        {{ week_start("snapshot_date") }} as week_start,
        count(*) as close_date_pushed
    from (
        select
            snapshot_date,
            expected_close_date,
            {{ in_previous_export("expected_close_date") }} as previous_close_date
        from {{ ref('stg_raw__opportunity_snapshots') }}
    )
    where expected_close_date > previous_close_date
    group by 1
),

created as (
    select
        {{ week_start(local_date('created_at')) }} as week_start,
        count(*) as created,
        sum(amount_reporting) as created_amount
    from deals
    group by 1
),

closed as (
    select
        {{ week_start(local_date('closed_at')) }} as week_start,
        count(*) filter (where status = 'won') as won,
        sum(amount_reporting) filter (where status = 'won') as won_amount,
        count(*) filter (where status = 'lost') as lost,
        sum(amount_reporting) filter (where status = 'lost') as lost_amount
    from deals
    where status in ('won', 'lost') and closed_at is not null
    group by 1
),

open_by_week as (
    select
        week_start,
        sum(deals) as deals,
        sum(amount) as amount
    from open_events
    group by 1
),

weighted_by_week as (
    select
        week_start,
        sum(weighted) as weighted
    from weighted_events
    group by 1
),

running as (
    select
        w.week_start,
        cast(sum(coalesce(o.deals, 0)) over (order by w.week_start) as bigint) as open_at_end,
        sum(coalesce(o.amount, 0)) over (order by w.week_start) as open_amount_at_end,
        round(sum(coalesce(x.weighted, 0)) over (order by w.week_start), 2)
            as weighted_pipeline_at_end
    from weeks as w
    left join open_by_week as o on w.week_start = o.week_start
    left join weighted_by_week as x on w.week_start = x.week_start
)

select
    r.week_start,
    coalesce(lag(r.open_at_end) over (order by r.week_start), 0) as open_at_start,
    coalesce(lag(r.open_amount_at_end) over (order by r.week_start), 0) as open_amount_at_start,
    coalesce(c.created, 0) as created,
    coalesce(c.created_amount, 0) as created_amount,
    coalesce(m.advanced, 0) as advanced,
    coalesce(m.slipped_back, 0) as slipped_back,
    coalesce(p.close_date_pushed, 0) as close_date_pushed,
    coalesce(x.won, 0) as won,
    coalesce(x.won_amount, 0) as won_amount,
    coalesce(x.lost, 0) as lost,
    coalesce(x.lost_amount, 0) as lost_amount,
    r.open_at_end,
    r.open_amount_at_end,
    r.weighted_pipeline_at_end
from running as r
left join created as c on r.week_start = c.week_start
left join moves as m on r.week_start = m.week_start
left join pushes as p on r.week_start = p.week_start
left join closed as x on r.week_start = x.week_start
