{#- The first day (a 'YYYY-MM-DD' string) from which rows of this incremental model can
    change in this run, or none on a full build (or when the model is still empty).

    stg_landing__events replaces only records of the landing partitions from
    var('landing_lookback_days') before its newest record. This model's newest `column` was
    derived from staging at its last run, so it is never newer than staging's newest
    record then, and staging's newest record only moves forward: the same number of days
    before it is a safe, slightly early, start. That also holds when staging ran more often
    than this model (Cosmos retries one model at a time). `extra_days` widens the window for
    a measure that looks back (a return within 30 days); `month` rounds down to the first
    day of the month, for models that recompute whole months. -#}
{% macro incremental_since(column, extra_days=0, month=false) -%}
    {%- if not (execute and this is not none and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set days = var('landing_lookback_days', 7) | int + extra_days -%}
    {%- set start = dbt.dateadd('day', -days, 'max(' ~ column ~ ')') -%}
    {%- if month -%}
        {%- set start = dbt.date_trunc('month', start) -%}
    {%- endif -%}
    {%- set value = run_query('select cast(' ~ start ~ ' as date) from ' ~ this).columns[0].values()[0] -%}
    {{ return(value | string if value is not none else none) }}
{%- endmacro %}

{#- The rows of `relation` (a CTE name) whose `keys` have a row with `posted_at` on or
    after `since`, the members or threads an incremental run recomputes from their whole
    history; every row when `since` is none (a full build). -#}
{% macro rows_of_keys_touched_since(relation, keys, since) -%}
    select {{ relation }}.*
    from {{ relation }}
    {%- if since %}
    inner join (
        select distinct
            {%- for key in keys %}
            {{ relation }}.{{ key }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ relation }}
        where {{ relation }}.posted_at >= cast('{{ since }}' as date)
    ) as touched
        on
        {%- for key in keys %}
            {{ "and " if not loop.first }}{{ relation }}.{{ key }} = touched.{{ key }}
        {%- endfor %}
    {%- endif %}
{%- endmacro %}
