{#- Where DuckDB and Spark SQL differ, the difference lives here and nowhere else: every
    model is one file for both engines. Each macro dispatches per adapter (default__ is
    DuckDB's, spark__ Spark's); everything else the models use (FILTER, median, max_by,
    IS DISTINCT FROM, date + n, intervals, window functions) reads the same on both. -#}

{#- A wall-clock timestamp in the business time zone, as a timestamp with time zone.
    On Spark a timestamp is an instant read in the session time zone, which the spark
    target sets to the business time zone: the cast is all it takes. -#}
{% macro local_timestamp_to_tz(expr) -%}
    {{ return(adapter.dispatch('local_timestamp_to_tz')(expr)) }}
{%- endmacro %}

{% macro default__local_timestamp_to_tz(expr) -%}
    timezone('{{ var("business_timezone") }}', {{ expr }})
{%- endmacro %}

{% macro spark__local_timestamp_to_tz(expr) -%}
    cast({{ expr }} as timestamp)
{%- endmacro %}

{#- Fractional days from one timestamp to another (negative when b is before a), counted
    on the business time zone's wall clock: from local midnight to local midnight is a
    whole number of days even across a daylight-saving change (a day of 23 or 25 hours
    is one day, as a person counts). From whole microseconds, so that both engines
    divide the same integer by the same number. -#}
{% macro days_between(a, b) -%}
    {{ return(adapter.dispatch('days_between')(a, b)) }}
{%- endmacro %}

{#- (A zone without daylight saving, var timezone_has_dst false, skips the conversion:
    its wall clock and its instants differ by a constant.) -#}
{% macro default__days_between(a, b) -%}
    {%- if var('timezone_has_dst', true) -%}
    (cast(epoch_us(timezone('{{ var("business_timezone") }}', {{ b }}))
        - epoch_us(timezone('{{ var("business_timezone") }}', {{ a }})) as double) / 86400000000.0)
    {%- else -%}
    (cast(epoch_us({{ b }}) - epoch_us({{ a }}) as double) / 86400000000.0)
    {%- endif -%}
{%- endmacro %}

{% macro spark__days_between(a, b) -%}
    {%- if var('timezone_has_dst', true) -%}
    (cast(unix_micros(from_utc_timestamp({{ b }}, '{{ var("business_timezone") }}'))
        - unix_micros(from_utc_timestamp({{ a }}, '{{ var("business_timezone") }}')) as double)
        / 86400000000.0)
    {%- else -%}
    (cast(unix_micros({{ b }}) - unix_micros({{ a }}) as double) / 86400000000.0)
    {%- endif -%}
{%- endmacro %}

{#- A figure rounded half up to n decimals, as a double. The value is first made an exact
    decimal, so that 2.675 (stored as 2.67499999...) rounds to 2.68 on both engines: DuckDB
    rounds a double's binary value, Spark its decimal text, and plain round() disagrees
    between them at such ties. Also absorbs the last-bit noise of a float sum's order.
    A figure under 10^7 (days, rates, most amounts) is made a decimal(18, 10): the same
    value as decimal(38, 10) (checked on 11 million values, ties and bounds included), in a
    64-bit integer instead of a 128-bit one, twelve times quicker on DuckDB (3 million
    values: 0.22 s against 0.018 s; a million-deal run rounds tens of millions). Larger
    ones keep decimal(38, 10). -#}
{% macro round_half_up(expr, decimals) -%}
    case
        when abs({{ expr }}) < 1e7
            then cast(round(cast({{ expr }} as decimal(18, 10)), {{ decimals }}) as double)
        else cast(round(cast({{ expr }} as decimal(38, 10)), {{ decimals }}) as double)
    end
{%- endmacro %}

{#- One row per day from first_day to last_day (both included), as column `alias`, for
    every row of `relation` (whose columns the two bounds may name). -#}
{% macro days_from_to(relation, first_day, last_day, alias) -%}
    {{ return(adapter.dispatch('days_from_to')(relation, first_day, last_day, alias)) }}
{%- endmacro %}

{% macro default__days_from_to(relation, first_day, last_day, alias) -%}
    select cast(t.d as date) as {{ alias }}
    from {{ relation }}, range(cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp) + interval 1 day, interval 1 day) as t(d)
{%- endmacro %}

{% macro spark__days_from_to(relation, first_day, last_day, alias) -%}
    select explode(sequence(cast({{ first_day }} as date), cast({{ last_day }} as date), interval 1 day)) as {{ alias }}
    from {{ relation }}
{%- endmacro %}

{#- ISO day of the week: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expr) -%}
    isodow({{ date_expr }})
{%- endmacro %}

{% macro spark__iso_day_of_week(date_expr) -%}
    (weekday({{ date_expr }}) + 1)
{%- endmacro %}

{#- A select-list expression giving one row per part of a delimited text ('a;b' -> a, b). -#}
{% macro split_to_rows(expr, delimiter) -%}
    {{ return(adapter.dispatch('split_to_rows')(expr, delimiter)) }}
{%- endmacro %}

{% macro default__split_to_rows(expr, delimiter) -%}
    unnest(string_split({{ expr }}, '{{ delimiter }}'))
{%- endmacro %}

{% macro spark__split_to_rows(expr, delimiter) -%}
    {#- split() takes a regular expression: keep the delimiter a plain character -#}
    explode(split({{ expr }}, '{{ delimiter }}'))
{%- endmacro %}

{#- Aggregate: a JSON object text {"key": value, ...} with its keys in `order_expr` order
    (then key order), e.g. {"初步接洽":3.5,"需求确认":12.25}. -#}
{% macro json_object_agg(key_expr, value_expr, order_expr) -%}
    {{ return(adapter.dispatch('json_object_agg')(key_expr, value_expr, order_expr)) }}
{%- endmacro %}

{#- (Unordered list of structs, sorted afterwards: DuckDB cannot spill an ordered aggregate,
    `list(... order by ...)`, so one per deal ran out of memory at ten million deals.) -#}
{% macro default__json_object_agg(key_expr, value_expr, order_expr) -%}
    cast(to_json(map_from_entries(list_transform(
        list_sort(list(struct_pack(o := {{ order_expr }}, k := {{ key_expr }}, v := {{ value_expr }}))),
        lambda e: struct_pack(key := struct_extract(e, 'k'), value := struct_extract(e, 'v'))
    ))) as varchar)
{%- endmacro %}

{% macro spark__json_object_agg(key_expr, value_expr, order_expr) -%}
    to_json(map_from_entries(transform(
        array_sort(collect_list(struct({{ order_expr }} as o, {{ key_expr }} as k, {{ value_expr }} as v))),
        e -> struct(e.k as key, e.v as value)
    )))
{%- endmacro %}

{#- Spark reads the canonical raw tables from the Parquet files ingestion writes beside the
    DuckDB warehouse (var spark_raw_dir): a pre-hook of each staging model makes the raw
    tables it reads external tables in database raw, re-pointed at every run (dropping an
    external table leaves its files alone). DuckDB holds the raw tables itself: the hook
    renders nothing there and dbt skips it. -#}
{% macro register_raw_sources(node) -%}
    {{ return(adapter.dispatch('register_raw_sources')(node)) }}
{%- endmacro %}

{% macro default__register_raw_sources(node) -%}
{%- endmacro %}

{% macro spark__register_raw_sources(node) -%}
    {%- if execute -%}
        {%- set raw_dir = var('spark_raw_dir', var('spark_dir', '../data/spark') ~ '/raw') -%}
        {%- for source_name, table in node.sources if source_name == 'raw' -%}
            {%- do run_query('create database if not exists raw') -%}
            {%- do run_query('drop table if exists raw.' ~ table) -%}
            {%- do run_query("create table raw." ~ table ~ " using parquet location '" ~ raw_dir ~ "/" ~ table ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- The currency of an amount whose export names none: the source's own (oppwh.yml
    sources.<name>.currency, var source_currencies) or the installation's default. -#}
{% macro default_currency_for(source_column) -%}
    {%- set per_source = var('source_currencies', {}) or {} -%}
    {%- if per_source -%}
    case {{ source_column }}
        {%- for source, code in per_source.items() %}
        when '{{ source | replace("'", "''") }}' then '{{ code }}'
        {%- endfor %}
        else '{{ var("default_currency") }}'
    end
    {%- else -%}
    '{{ var("default_currency") }}'
    {%- endif -%}
{%- endmacro %}
