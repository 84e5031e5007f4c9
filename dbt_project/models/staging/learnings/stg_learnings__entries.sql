with

events as (
    select * from {{ ref('stg_landing__events') }}
    where platform = 'learnings' and record_type = 'learning'
),

renamed as (
    select
        events.source,
        events.record_id as learning_id,
        cast(events.occurred_at as date) as learned_on,
        events.title,
        events.text,
        -- The connector stores a learning's KPIs as `kpi:<name>` tags next to its own tags.
        {{ tags_joined('events.tags', exclude_prefix='kpi') }} as tags,
        {{ tags_joined('events.tags', prefix='kpi') }} as kpis
    from events
)

select * from renamed
