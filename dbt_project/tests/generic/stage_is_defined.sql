{#- Every stage of the model is defined: in the stages seed or in the source's own
    stage_definitions export (the is_unknown_stage flag resolves both, per source). The
    failing rows name the stages to define. -#}
{% test stage_is_defined(model, column_name) %}
select source_system, {{ column_name }} as undefined_stage, count(*) as n
from {{ model }}
where is_unknown_stage
group by 1, 2
{% endtest %}
