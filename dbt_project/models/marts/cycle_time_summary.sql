-- Cycle time percentiles per segment and outcome. Segments are long-form: segment_type
-- names the dimension (all, industry, size_band, amount_band, lead_source, owner,
-- customer_type), segment_value its value; the slowest stage is the stage with the
-- highest median days among the segment's deals.
with deals as (
    select * from {{ ref('cycle_time') }}
),

segmented as (
    {% set segments = {
        'all': "'all'",
        'industry': "coalesce(industry, 'unknown')",
        'size_band': 'size_band',
        'amount_band': 'amount_band',
        'lead_source': "coalesce(lead_source, 'unknown')",
        'owner': "coalesce(owner_name, owner_id, 'unknown')",
        'customer_type': 'customer_type',
    } %}
    {% for name, expr in segments.items() %}
    select '{{ name }}' as segment_type, {{ expr }} as segment_value, opportunity_id, source_system, outcome, cycle_time_days
    from deals
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

stats as (
    select
        segment_type,
        segment_value,
        outcome,
        count(*) as deals,
        round(quantile_cont(cycle_time_days, 0.5), 2) as p50_days,
        round(quantile_cont(cycle_time_days, 0.75), 2) as p75_days,
        round(quantile_cont(cycle_time_days, 0.9), 2) as p90_days,
        -- averaged as decimals: a float sum's order varies between runs
        round(avg(cast(cycle_time_days as decimal(18, 2))), 2) as avg_days
    from segmented
    group by 1, 2, 3
),

stage_days as (
    select s.segment_type, s.segment_value, s.outcome, l.stage, median(l.days_in_stage) as median_days
    from segmented as s
    inner join {{ ref('opportunity_lifecycle') }} as l
        on l.source_system = s.source_system and l.opportunity_id = s.opportunity_id
    where not l.is_closing_stage
    group by 1, 2, 3, 4
),

slowest as (
    select segment_type, segment_value, outcome,
        first(stage order by median_days desc, stage) as slowest_stage,
        round(max(median_days), 2) as slowest_stage_median_days
    from stage_days
    group by 1, 2, 3
)

select st.*, sl.slowest_stage, sl.slowest_stage_median_days
from stats as st
left join slowest as sl
    on sl.segment_type = st.segment_type and sl.segment_value = st.segment_value
    and sl.outcome = st.outcome
