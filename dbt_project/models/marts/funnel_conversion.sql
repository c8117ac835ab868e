-- Per source and open stage: deals that reached it (seen in it or a later stage), deals
-- that went past it (a later stage, or won from it), deals won, and the conversion to the
-- next stage and to won. Closed deals whose path is unknown are counted apart.
select
    source_system,
    stage,
    stage_order,
    default_probability,
    count(*) filter (where reached) as reached,
    count(*) filter (where advanced) as advanced,
    count(*) filter (where reached and status = 'won') as won,
    count(*) filter (where reached and status = 'open') as still_open,
    count(*) filter (where is_path_unknown and status <> 'open') as path_unknown,
    {{ round_half_up('count(*) filter (where advanced) / nullif(count(*) filter (where reached), 0)', 4) }}
        as conversion_to_next,
    {{ round_half_up("count(*) filter (where reached and status = 'won') / nullif(count(*) filter (where reached), 0)", 4) }}
        as conversion_to_won
from {{ ref('int_funnel_deal_stages') }}
group by 1, 2, 3, 4
