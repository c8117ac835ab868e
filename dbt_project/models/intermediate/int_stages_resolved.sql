-- Stage order and meaning per (source_system, stage): a source's own stage metadata
-- (Salesforce OpportunityStage) wins; otherwise the stages seed, which knows the Chinese
-- CRM stages, Salesforce's standard stages and HubSpot's default pipeline.
with sources as (
    select distinct source_system from {{ ref('stg_raw__opportunities') }}
),

from_source as (
    select
        source_system,
        stage,
        stage_order,
        is_closed,
        is_won,
        default_probability,
        row_number() over (partition by source_system, stage order by _load_id desc) as _rank
    from {{ ref('stg_raw__stage_definitions') }}
),

from_seed as (
    select
        s.source_system,
        d.stage,
        d.stage_order,
        d.is_closed,
        d.is_won,
        d.default_probability
    from sources as s
    cross join {{ ref('stages') }} as d
)

select
    f.source_system,
    f.stage,
    f.stage_order,
    f.is_closed,
    f.is_won,
    coalesce(f.default_probability, d.default_probability) as default_probability,
    'source' as defined_by
from from_source as f
left join {{ ref('stages') }} as d on f.stage = d.stage
where f._rank = 1
union all
select
    d.*,  -- the columns above, in their order
    'seed' as defined_by
from from_seed as d
where not exists (
    select 1 from from_source as f
    where f._rank = 1 and f.source_system = d.source_system and f.stage = d.stage
)
