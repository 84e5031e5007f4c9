{#- 0 .. 10^digits - 1 as `month_offset`, without recursive SQL (dbt unit tests refuse it)
    or engine-specific series functions. -#}
{% macro month_offsets(digits=3) -%}
    select
        {%- for i in range(digits) %}
        d{{ i }}.n * {{ 10 ** i }}{% if not loop.last %} +{% endif %}
        {%- endfor %} as month_offset
    from
        {%- for i in range(digits) %}
        (
            select 0 as n union all select 1 union all select 2 union all select 3
            union all select 4 union all select 5 union all select 6 union all select 7
            union all select 8 union all select 9
        ) as d{{ i }}{% if not loop.last %} cross join{% endif %}
        {%- endfor %}
{%- endmacro %}
