-- Cycle time percentiles per segment and outcome. Segments are long-form: segment_type
-- names the dimension (all, industry, size_band, amount_band, lead_source, owner,
-- customer_type), segment_value its value; the slowest stage is the stage with the
-- highest median days among the segment's deals.
-- Percentiles are exact (quantile_cont's linear interpolation) but computed from counts of
-- each distinct value (macro quantile_from_counts): DuckDB's holistic quantile aggregates
-- hold every value in memory and cannot spill, which ran out of memory at 10 million deals.
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
        select
            '{{ name }}' as segment_type,
            {{ expr }} as segment_value,
            opportunity_id,
            source_system,
            outcome,
            cycle_time_days
        from deals
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

cycle_counts as (
    select
        segment_type,
        segment_value,
        outcome,
        cycle_time_days as v,
        count(*) as c
    from segmented
    group by 1, 2, 3, 4
),

stats as (
    select
        segment_type,
        segment_value,
        outcome,
        cast(sum(c) as bigint) as deals,
        {{ round_half_up(quantile_from_counts(0.5), 2) }} as p50_days,
        {{ round_half_up(quantile_from_counts(0.75), 2) }} as p75_days,
        {{ round_half_up(quantile_from_counts(0.9), 2) }} as p90_days,
        -- averaged as decimals: a float sum's order varies between runs
        {{ round_half_up('sum(cast(v as decimal(18, 2)) * c) / sum(c)', 2) }} as avg_days
    from {{ cumulative_counts('cycle_counts', ['segment_type', 'segment_value', 'outcome']) }}
    group by 1, 2, 3
),

stage_counts as (
    select
        s.segment_type,
        s.segment_value,
        s.outcome,
        l.stage,
        l.days_in_stage as v,
        count(*) as c
    from segmented as s
    inner join {{ ref('opportunity_lifecycle') }} as l
        on {{ same_deal('s', 'l') }}
    where not l.is_closing_stage and l.days_in_stage is not null
    group by 1, 2, 3, 4, 5
),

stage_days as (
    select
        segment_type,
        segment_value,
        outcome,
        stage,
        {{ quantile_from_counts(0.5) }} as median_days
    from {{ cumulative_counts('stage_counts', ['segment_type', 'segment_value', 'outcome', 'stage']) }}
    group by 1, 2, 3, 4
),

ranked_stage_days as (
    select
        *,
        row_number() over (
            partition by segment_type, segment_value, outcome
            order by median_days desc nulls last, stage asc
        ) as slowness_rank
    from stage_days
),

slowest as (
    select
        segment_type,
        segment_value,
        outcome,
        stage as slowest_stage,
        {{ round_half_up('median_days', 2) }} as slowest_stage_median_days
    from ranked_stage_days
    where slowness_rank = 1
)

select
    st.*,
    sl.slowest_stage,
    sl.slowest_stage_median_days
from stats as st
left join slowest as sl
    on
        st.segment_type = sl.segment_type and st.segment_value = sl.segment_value
        and st.outcome = sl.outcome
