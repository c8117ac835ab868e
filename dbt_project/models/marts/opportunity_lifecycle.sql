-- One row per opportunity x stage visit. The open visit of an open deal runs to the
-- end of the as-of day; the closing visit (won/lost) has no duration.
--
-- On DuckDB a view: everything but the open visit's days is int_opportunity_lifecycle,
-- kept from day to day; only that arithmetic against the as-of day (raw.run_context) is
-- worked out here, when the mart is read. On Spark a table (its marts are Parquet files).
{{ config(materialized=('table' if target.type == 'spark' else 'view')) }}

select
    opportunity_id,
    source_system,
    stage,
    stage_order,
    previous_stage,
    visit_number,
    entered_at,
    exited_at,
    case
        when exited_at is not null or is_closing_stage then days_in_stage
        else {{ round_half_up(days_between('entered_at', as_of_end()), 2) }}
    end as days_in_stage,
    is_current,
    is_closing_stage,
    is_regression,
    stages_skipped,
    opportunity_status
from {{ ref('int_opportunity_lifecycle') }}
