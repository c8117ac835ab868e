{#- Exact percentiles from (value, count) rows, so that no aggregate holds every value.

    cumulative_counts(relation, keys): the rows of `relation` (columns v, c and the keys)
    with n, the group's count, and cum, the running count in value order.
    quantile_from_counts(p): inside a GROUP BY of those keys, quantile_cont(v, p): the value
    at 0-based position h = (n - 1) * p, interpolated between the values at floor(h) and
    ceil(h) (the k-th value is the smallest v whose cum exceeds k). -#}
{% macro cumulative_counts(relation, keys) -%}
    (
        select
            *,
            -- a double, as quantile_cont computes the position: same rounding, same result
            cast(sum(c) over (partition by {{ keys | join(', ') }}) as double) as n,
            sum(c) over (
                partition by {{ keys | join(', ') }} order by v rows between unbounded preceding and current row
            ) as cum
        from {{ relation }}
    )
{%- endmacro %}

{% macro quantile_from_counts(p) -%}
    (
        min(v) filter (where cum > floor((n - 1) * cast({{ p }} as double)))
        + ((max(n) - 1) * cast({{ p }} as double) - floor((max(n) - 1) * cast({{ p }} as double)))
        * (
            min(v) filter (where cum > ceil((n - 1) * cast({{ p }} as double)))
            - min(v) filter (where cum > floor((n - 1) * cast({{ p }} as double)))
        )
    )
{%- endmacro %}
