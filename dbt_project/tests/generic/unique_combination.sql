{#- Grain test: no two rows share the same values of these columns.
    `rebuilt_from`, for an incremental model built from loads that keeps what its last
    build rewrote (macros/rebuilt.sql): the versions it is built from. After an incremental
    build only the keys that build rewrote are checked (a day's activities, not the tens of
    millions before them); after a full build, every row. -#}
{% test unique_combination(model, columns, rebuilt_from=none) %}
    {% set key = columns | join(', ') %}
    {% set after = rebuilt_after(model) if rebuilt_from is not none else none %}
select {{ key }}, count(*) as n
from {{ model }}
{% if after is not none %}
    where ({{ key }}) in (select {{ key }} from {{ rebuilt_from }} where _load_id > {{ after }})
{% endif %}
group by {{ key }}
having count(*) > 1
{% endtest %}
