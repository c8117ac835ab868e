-- Per source and open stage: deals that reached it (seen in it or a later stage), deals
-- that went past it (a later stage, or won from it), deals won, and the conversion to the
-- next stage and to won. Closed deals whose path is unknown are counted apart.
select
    source_system,
    stage,
    stage_order,
    default_probability,
    {{ funnel_counts() }}
from {{ ref('int_funnel_deal_stages') }}
group by 1, 2, 3, 4
