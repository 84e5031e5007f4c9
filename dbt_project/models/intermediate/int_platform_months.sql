-- The reporting grid: every month from a platform's first record to the last month with
-- data on any platform, plus the `all` rollup. Months without activity stay visible.
-- Incremental: a platform's first month only moves earlier and the last month only later
-- as records arrive (see macro incremental_since for the invariant), so a daily build
-- takes them from this grid and the window's posts instead of scanning every post, and
-- rebuilds the (small) grid.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_where',
    incremental_predicates=['true'],
) }}
{%- set since = incremental_since('month', month=true) %}
with

posts as (
    select * from {{ ref('int_posts_unioned') }}
    {%- if since %}
    where posted_at >= cast('{{ since }}' as date)
    {%- endif %}
),

bounds as (
    select
        posts.platform,
        min(posts.posted_month) as first_month,
        max(posts.posted_month) as last_month
    from posts
    group by posts.platform
    {%- if since %}

    union all

    select
        this_run.platform,
        min(this_run.month) as first_month,
        max(this_run.month) as last_month
    from {{ this }} as this_run
    where this_run.platform <> 'all'
    group by this_run.platform
    {%- endif %}
),

bound_rows as (
    {{ all_rollup('bounds', ['bounds.first_month']) }}
),

platform_starts as (
    select
        bound_rows.platform,
        min(bound_rows.first_month) as first_month
    from bound_rows
    group by bound_rows.platform
),

last_month as (
    select max(bounds.last_month) as last_month
    from bounds
),

offsets as (
    {{ month_offsets(3) }}
),

final as (
    select
        platform_starts.platform,
        cast({{ dbt.dateadd('month', 'offsets.month_offset', 'platform_starts.first_month') }} as date) as month
    from platform_starts
    cross join offsets
    cross join last_month
    where {{ dbt.dateadd('month', 'offsets.month_offset', 'platform_starts.first_month') }} <= last_month.last_month
)

select * from final
