-- Written by the scoring step (scoring/store.py) after the dbt marts, not built by dbt: the
-- model declares the table so the semantic layer can offer `grade` as a dimension.
{{ config(materialized='written_by_python') }}

select
    opportunity_id,
    source_system,
    opportunity_name,
    owner_id,
    owner_name,
    team,
    stage,
    amount_reporting,
    industry,
    score,
    win_probability,
    grade,
    reasons,
    trend,
    previous_grade,
    scored_on,
    scored_at,
    model_version
from {{ this }}
