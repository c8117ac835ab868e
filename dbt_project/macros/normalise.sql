{#- Status words from every source onto open / won / lost; NULL when the word is unknown
    (the stage then decides, see int_opportunities_current). -#}
{% macro normalise_status(expr) -%}
    case lower(trim({{ expr }}))
        when 'open' then 'open' when '进行中' then 'open' when '跟进中' then 'open'
        when 'won' then 'won' when '赢单' then 'won' when 'closed won' then 'won' when '成交' then 'won'
        when 'lost' then 'lost' when '输单' then 'lost' when 'closed lost' then 'lost' when '丢单' then 'lost'
    end
{%- endmacro %}

{#- Each row of `relation` with `_version_rank`: 1 for the latest export of its
    (source_system, `key`), by export date, then load, then row (a later row of the same
    file wins). Keep `_version_rank = 1` for one row per record. -#}
{% macro ranked_versions(relation, key) -%}
    select
        *,
        row_number() over (
            partition by source_system, {{ key }}
            order by _export_date desc, _load_id desc, _row_number desc
        ) as _version_rank
    from {{ relation }}
{%- endmacro %}

{#- `column` as the deal had it in its previous export (NULL for its first): what an export
    of the current state changed since the one before (owner changes, close-date pushes). -#}
{% macro in_previous_export(column) -%}
    lag({{ column }}) over (
        partition by source_system, opportunity_id order by snapshot_date, _load_id
    )
{%- endmacro %}

{#- The join condition of two relations on the same deal: an opportunity id is unique only
    within its source system. -#}
{% macro same_deal(left, right) -%}
    {{ left }}.source_system = {{ right }}.source_system and {{ left }}.opportunity_id = {{ right }}.opportunity_id
{%- endmacro %}

{#- Counts from a left-joined relation `alias`, 0 where it has no row (none happened):
    `coalesce(alias.column, 0) as column` for each column. -#}
{% macro zero_when_missing(alias, columns) -%}
    {%- for column in columns %}
    coalesce({{ alias }}.{{ column }}, 0) as {{ column }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
