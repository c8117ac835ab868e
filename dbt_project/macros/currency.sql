{#- An amount in the reporting currency (var reporting_currency), rounded to cents: through
    each currency's rate to CNY (`rate`, the currency_rates seed) over the reporting
    currency's. An amount already in the reporting currency is itself and needs no rate (an
    installation in a currency the seed does not list, BRL say, works on its own amounts);
    any other currency without a rate gives NULL (and a failing test), never the raw amount.
    The model defines CTE `reporting_rate` (reporting_rate_cte). -#}
{% macro amount_in_reporting_currency(amount, currency, rate) -%}
    {{ round_half_up(
        "case when upper(" ~ currency ~ ") = upper('" ~ var("reporting_currency") ~ "') then "
        ~ amount ~ " else " ~ amount ~ " * " ~ rate
        ~ " / (select rate_to_cny from reporting_rate) end", 2
    ) }}
{%- endmacro %}

{#- The seed's rates (currency upper-cased) and the reporting currency's, as two CTEs. -#}
{% macro reporting_rate_ctes() -%}
rates as (
    select
        upper(currency) as currency,
        rate_to_cny
    from {{ ref('currency_rates') }}
),

reporting_rate as (
    select rate_to_cny from rates
    where currency = upper('{{ var("reporting_currency") }}')
)
{%- endmacro %}
