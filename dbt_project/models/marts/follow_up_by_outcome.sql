-- Touches before a win against touches before a loss: one row per source x outcome.
select
    f.source_system,
    f.status as outcome,
    count(*) as closed_deals,
    {{ round_half_up('avg(f.touches_before_close)', 2) }} as avg_touches_before_close,
    median(f.touches_before_close) as median_touches_before_close,
    {{ round_half_up('avg(cast(f.touches_per_open_week as decimal(18, 2)))', 2) }}
        as avg_touches_per_open_week,
    {{ round_half_up('avg(case when f.touches_before_close = 0 then 1 else 0 end)', 4) }}
        as share_never_touched
from {{ ref('follow_up_frequency') }} as f
where f.status in ('won', 'lost')
group by 1, 2
