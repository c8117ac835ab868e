-- The funnel per creation quarter (cohort) in the business time zone: of the deals
-- created in a quarter, how many reached each stage, went past it, won, lost, are still open.
select
    source_system,
    cast(date_trunc('quarter', {{ local_date('created_at') }}) as date) as cohort_quarter,
    stage,
    stage_order,
    count(*) filter (where reached and status = 'lost') as lost,
    {{ funnel_counts() }}
from {{ ref('int_funnel_deal_stages') }}
where created_at is not null
group by 1, 2, 3, 4
