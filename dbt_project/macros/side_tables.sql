{#- The tables an incremental model keeps beside itself for its next build and its tests
    (what it was built from, which deals a build recomputed): `<model>_<suffix>`, in the
    model's schema. Written by the model's own hooks, so they are not dbt models. -#}
{% macro side_table(relation, suffix) -%}
    {{ return(relation.incorporate(path={"identifier": relation.identifier ~ "_" ~ suffix})) }}
{%- endmacro %}

{#- The side table when the warehouse held it as the build started (else none). -#}
{% macro existing_side_table(relation, suffix) -%}
    {{ return(adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier ~ "_" ~ suffix
    )) }}
{%- endmacro %}
