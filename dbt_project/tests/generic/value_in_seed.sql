{#- Every non-null value of the column appears in the seed column: a stage name the
    stage seed does not know, say. Used as a warning: real exports are full of them. -#}
{% test value_in_seed(model, column_name, seed, seed_column) %}
select {{ column_name }} as unknown_value, count(*) as n
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} not in (select {{ seed_column }} from {{ ref(seed) }})
group by 1
{% endtest %}
