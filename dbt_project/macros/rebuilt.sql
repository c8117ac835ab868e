{#- What the last build of an incremental model built from loads (delete+insert on its key)
    rewrote, for its tests. The model's pre-hook keeps the newest load it held before the
    build in the side table `<model>_rebuilt` (NULL after a full build: every row written).
    The keys of the versions loaded after it are the keys that build rewrote; the other rows
    are as the build before left them, and were tested then
    (tests/generic/unique_combination.sql). -#}

{#- The pre-hook: the newest load the model holds now, before this build changes it. -#}
{% macro record_rebuilt_after() -%}
create or replace table {{ side_table(this, 'rebuilt') }} as
select
    {% if is_incremental() -%}
        (select coalesce(max(held._load_id), -1) from {{ this }} as held)
    {%- else -%}
        cast(null as bigint)
    {%- endif %} as after_load_id
{%- endmacro %}

{#- The newest load `relation` held before its last build; none when that build wrote every
    row, or the model was built before this was kept (or on Spark, which keeps none). -#}
{% macro rebuilt_after(relation) -%}
    {%- set side = existing_side_table(relation, 'rebuilt') if execute else none -%}
    {%- if side is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_query("select after_load_id from " ~ side).columns[0].values()[0]) }}
{%- endmacro %}
