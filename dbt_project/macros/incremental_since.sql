{#- Incremental models recompute only what the rows staging can have changed in this run
    can change. The invariant they rely on: every row stg_landing__events inserts or
    replaces in a run, in its new and in its old version, has its time on or after the
    first day `incremental_since` returns (a record edited and landed again keeps its
    time or moves within the lookback window; a backfill reaching further back, or an
    edit moving a record's time from before the window, needs a full refresh). Under it,
    a member's or thread's row whose times all lie before that day is final, and min/max
    state merged with the window's rows gives what the whole history gives. -#}

{#- SQL for the first day (a date) from which rows of this incremental model can change
    in this run: `var('landing_lookback_days')` (+ `extra_days`) before this model's newest
    `column`, rounded down to the month when `month`.

    stg_landing__events replaces only records of the landing partitions from
    var('landing_lookback_days') before its newest record. This model's newest `column` was
    derived from staging at its last run, so it is never newer than staging's newest
    record then, and staging's newest record only moves forward: the same number of days
    before it is a safe, slightly early, start. That also holds when staging ran more often
    than this model (Cosmos retries one model at a time). `extra_days` widens the window for
    a measure that looks back (a return within 30 days). A scalar subquery on `this`: a
    delete in the same run (strategy replace_where) reads the same value, because the
    table is unchanged until then. In a model's config (rendered at parse time, when
    `this` does not yet carry the model's schema) pass relation='{this}': the strategy
    puts the table's name there. -#}
{% macro lookback_start(column, extra_days=0, month=false, relation=none) -%}
    {%- set days = var('landing_lookback_days', 7) | int + extra_days -%}
    {%- set start = dbt.dateadd('day', -days, 'max(' ~ column ~ ')') -%}
    {%- if month -%}
        {%- set start = dbt.date_trunc('month', start) -%}
    {%- endif -%}
    (select cast({{ start }} as date) from {{ relation or this }})
{%- endmacro %}

{#- The value of lookback_start as a 'YYYY-MM-DD' string, or none on a full build (or when
    the model is still empty). -#}
{% macro incremental_since(column, extra_days=0, month=false) -%}
    {%- if not (execute and this is not none and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set value = run_query('select ' ~ lookback_start(column, extra_days, month)).columns[0].values()[0] -%}
    {{ return(value | string if value is not none else none) }}
{%- endmacro %}
