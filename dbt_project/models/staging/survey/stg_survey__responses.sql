with

events as (
    select * from {{ ref('stg_landing__events') }}
    where platform = 'survey' and record_type = 'survey_response'
),

renamed as (
    select
        events.source,
        events.record_id as response_id,
        events.occurred_at as answered_at,
        cast(events.value as integer) as score
    from events
)

select * from renamed
