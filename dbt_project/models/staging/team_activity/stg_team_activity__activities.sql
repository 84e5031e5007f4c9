with

events as (
    select * from {{ ref('stg_landing__events') }}
    where platform = 'team_activity' and record_type = 'team_activity'
),

renamed as (
    select
        events.source,
        events.record_id as activity_id,
        cast(events.occurred_at as date) as activity_on,
        {{ tag_value('events.tags', 'kind') }} as activity_kind,
        events.title
    from events
)

select * from renamed
