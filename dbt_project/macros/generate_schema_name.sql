{#- Schemas are named for their layer (raw, staging, intermediate, marts, seeds),
    not prefixed with the target schema, so analysts query `marts.opportunities`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
