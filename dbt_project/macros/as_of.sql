{#- The run's as-of day and the instant it ends, in the business time zone.
    Every age and "days since" figure is measured against these, so a rerun for a
    past day gives that day's answer. The day is var as_of when given (Spark runs, unit
    tests), else the one the run wrote to raw.run_context before the build. -#}
{% macro as_of_date() -%}
    {%- if var('as_of') -%}
        cast('{{ var("as_of") }}' as date)
    {%- else -%}
        (select as_of_date from raw.run_context)
    {%- endif -%}
{%- endmacro %}

{% macro as_of_end() -%}
    {{ local_timestamp_to_tz("cast(" ~ as_of_date() ~ " + 1 as timestamp)") }}
{%- endmacro %}

{#- The calendar day of a timestamp in the business time zone (the session time zone). -#}
{% macro local_date(expr) -%}
    cast({{ expr }} as date)
{%- endmacro %}

{#- The Monday a date falls in (weeks start on Monday), as a date. -#}
{% macro week_start(date_expr) -%}
    cast(date_trunc('week', {{ date_expr }}) as date)
{%- endmacro %}

{#- What int_opportunity_touches' rows depend on besides the data: the business time zone
    (weeks, gaps), whether it has daylight saving, the activity type map, and the columns
    the rows carry (the leading number, raised with each column added: the first build
    after an upgrade fills the new column of every deal instead of leaving it NULL in the
    rows it did not recompute). A change makes its next incremental build recompute
    every deal. -#}
{% macro touches_settings() -%}
    ('2|{{ var("business_timezone") }}|{{ var("timezone_has_dst", true) }}|'
        || cast((select sum(hash(m.source_word, m.activity_type)) from {{ ref('activity_type_map') }} as m) as varchar))
{%- endmacro %}
