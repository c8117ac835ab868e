{#- Status words from every source onto open / won / lost; NULL when the word is unknown
    (the stage then decides, see int_opportunities_current). -#}
{% macro normalise_status(expr) -%}
    case lower(trim({{ expr }}))
        when 'open' then 'open' when '进行中' then 'open' when '跟进中' then 'open'
        when 'won' then 'won' when '赢单' then 'won' when 'closed won' then 'won' when '成交' then 'won'
        when 'lost' then 'lost' when '输单' then 'lost' when 'closed lost' then 'lost' when '丢单' then 'lost'
    end
{%- endmacro %}
