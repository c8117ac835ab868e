{#- The run's as-of day and the instant it ends, in the business time zone.
    Every age and "days since" figure is measured against these, so a rerun for a
    past day gives that day's answer. -#}
{% macro as_of_date() -%}
    {%- if var('as_of') -%}cast('{{ var("as_of") }}' as date){%- else -%}current_date{%- endif -%}
{%- endmacro %}

{% macro as_of_end() -%}
    {{ local_timestamp_to_tz("cast(" ~ as_of_date() ~ " + 1 as timestamp)") }}
{%- endmacro %}

{#- A wall-clock timestamp in the business time zone, as a timestamp with time zone. -#}
{% macro local_timestamp_to_tz(expr) -%}
    {{ return(adapter.dispatch('local_timestamp_to_tz')(expr)) }}
{%- endmacro %}

{% macro default__local_timestamp_to_tz(expr) -%}
    timezone('{{ var("business_timezone") }}', {{ expr }})
{%- endmacro %}

{#- Fractional days from one timestamp to another (negative when b is before a). -#}
{% macro days_between(a, b) -%}
    {{ return(adapter.dispatch('days_between')(a, b)) }}
{%- endmacro %}

{% macro default__days_between(a, b) -%}
    ((epoch({{ b }}) - epoch({{ a }})) / 86400.0)
{%- endmacro %}

{#- The calendar day of a timestamp in the business time zone (the session time zone). -#}
{% macro local_date(expr) -%}
    cast({{ expr }} as date)
{%- endmacro %}

{#- The Monday a date falls in (weeks start on Monday), as a date. -#}
{% macro week_start(date_expr) -%}
    cast(date_trunc('week', {{ date_expr }}) as date)
{%- endmacro %}
