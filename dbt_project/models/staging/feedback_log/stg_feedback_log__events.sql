-- One row per feedback event: `<id>:received`, `<id>:acted`, `<id>:responded`; the event,
-- channel and status travel as `event:*`, `channel:*`, `status:*` tags.
with

events as (
    select * from {{ ref('stg_landing__events') }}
    where platform = 'feedback_log' and record_type = 'feedback'
),

renamed as (
    select
        events.source,
        events.record_id as feedback_event_id,
        events.thread_id as feedback_id,
        {{ tag_value('events.tags', 'event') }} as feedback_event,
        {{ tag_value('events.tags', 'channel') }} as channel,
        {{ tag_value('events.tags', 'status') }} as status,
        events.occurred_at
    from events
)

select * from renamed
