-- Authored public records of every community platform (var community_staging_models),
-- from every account: bots and staff stay here because responsiveness needs their replies.
-- A view: it only unions, filters and renames, and writing 10 M rows as a table cost more
-- than every model reading it (bench, issue 8). Incremental models downstream filter it on
-- posted_at, which reaches the stg_landing__events scan.
{{ config(materialized='view') }}
{%- set staging_models = var('community_staging_models') %}

with

{% for model in staging_models -%}
    {{ model }} as (
        select * from {{ ref(model) }}
    ),

{% endfor -%}

unioned as (
    {%- for model in staging_models %}
        select * from {{ model }}
        {%- if not loop.last %}
    union all  -- noqa: LT02
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        unioned.source,
        unioned.platform,
        unioned.post_type,
        unioned.post_id,
        unioned.thread_id,
        unioned.parent_post_id,
        unioned.actor,
        unioned.parent_actor,
        unioned.posted_at,
        unioned.is_bot,
        unioned.is_staff,
        cast(unioned.posted_at as date) as posted_on,
        cast({{ dbt.date_trunc('month', 'unioned.posted_at') }} as date) as posted_month
    from unioned
)

select * from final
