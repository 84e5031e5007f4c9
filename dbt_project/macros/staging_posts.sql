{#- The thin per-platform staging model of a community platform: its authored public
    records in the common contribution shape. `stg_<platform>__posts` calls this;
    int_posts_unioned unions the models listed in var('community_staging_models')
    (dbt_project.yml; tests/test_dbt_project.py fails when a model calling this is missing there). -#}
{% macro staging_posts(platform, record_types=('thread', 'reply', 'edit', 'mention')) -%}
with

events as (
    select * from {{ ref('stg_landing__events') }}
    where
        platform = '{{ platform }}'
        and record_type in ({% for t in record_types %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
),

renamed as (
    select
        events.source,
        events.platform,
        events.record_type as post_type,
        events.record_id as post_id,
        -- A thread's own row may leave thread_id empty on some platforms: it is its own root.
        coalesce(events.thread_id, events.record_id) as thread_id,
        events.parent_id as parent_post_id,
        events.actor,
        events.parent_actor,
        events.occurred_at as posted_at,
        events.is_bot,
        events.is_staff
    from events
)

select * from renamed
{%- endmacro %}
