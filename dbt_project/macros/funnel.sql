{#- The counts both funnels make over int_funnel_deal_stages (one definition of reached,
    advanced, won, still open, path unknown and the two conversions). -#}
{% macro funnel_counts() -%}
    count(*) filter (where reached) as reached,
    count(*) filter (where advanced) as advanced,
    count(*) filter (where reached and status = 'won') as won,
    count(*) filter (where reached and status = 'open') as still_open,
    count(*) filter (where is_path_unknown and status <> 'open') as path_unknown,
    {{ round_half_up('count(*) filter (where advanced) / nullif(count(*) filter (where reached), 0)', 4) }}
        as conversion_to_next,
    {{ round_half_up("count(*) filter (where reached and status = 'won') / nullif(count(*) filter (where reached), 0)", 4) }}
        as conversion_to_won
{%- endmacro %}
