-- The funnel per creation quarter (cohort) in the business time zone: of the deals
-- created in a quarter, how many reached each stage, went past it, won, are still open.
select
    source_system,
    cast(date_trunc('quarter', {{ local_date('created_at') }}) as date) as cohort_quarter,
    stage,
    stage_order,
    count(*) filter (where reached) as reached,
    count(*) filter (where advanced) as advanced,
    count(*) filter (where reached and status = 'won') as won,
    count(*) filter (where reached and status = 'lost') as lost,
    count(*) filter (where reached and status = 'open') as still_open,
    count(*) filter (where is_path_unknown and status <> 'open') as path_unknown,
    {{ round_half_up('count(*) filter (where advanced) / nullif(count(*) filter (where reached), 0)', 4) }}
        as conversion_to_next,
    {{ round_half_up("count(*) filter (where reached and status = 'won') / nullif(count(*) filter (where reached), 0)", 4) }}
        as conversion_to_won
from {{ ref('int_funnel_deal_stages') }}
where created_at is not null
group by 1, 2, 3, 4
