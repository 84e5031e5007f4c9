{#- The `all` rollup every KPI shows: each row of `relation` (a CTE) once as it is, and once
    more with `dimension` (platform, or a feedback channel) set to 'all', so one aggregate
    over the result gives every platform and their total in the same rows.
    `columns` are select expressions over `relation`, after `dimension` (and `key`).
    `key`, when given, is the account column: in the `all` rows it is prefixed with the
    platform, because pseudonyms are per platform and accounts are never linked across them
    (docs/kpis.md: a person on two platforms counts twice in `all`). -#}
{% macro all_rollup(relation, columns, key=none, dimension='platform') -%}
    select
        {{ relation }}.{{ dimension }},
        {%- if key %}
        {{ relation }}.{{ key }},
        {%- endif %}
        {%- for column in columns %}
        {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ relation }}

    union all

    select
        'all' as {{ dimension }},
        {%- if key %}
        {{ relation }}.{{ dimension }} || ':' || {{ relation }}.{{ key }} as {{ key }},
        {%- endif %}
        {%- for column in columns %}
        {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ relation }}
{%- endmacro %}
