-- One row per feedback item with the times it was received, acted on and responded to.
with

events as (
    select * from {{ ref('stg_feedback_log__events') }}
),

final as (
    select
        events.source,
        events.feedback_id,
        -- The channel is recorded on every event of an item; take the received one's.
        max(case when events.feedback_event = 'received' then events.channel end) as channel,
        min(case when events.feedback_event = 'received' then events.occurred_at end) as received_at,
        min(case when events.feedback_event = 'acted' then events.occurred_at end) as acted_at,
        min(case when events.feedback_event = 'responded' then events.occurred_at end) as responded_at
    from events
    group by events.source, events.feedback_id
)

select * from final
