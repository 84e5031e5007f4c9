-- Daily views of configured support pages: aggregate records, no account.
with

events as (
    select * from {{ ref('stg_landing__events') }}
    where platform = 'mediawiki' and record_type = 'pageviews'
),

renamed as (
    select
        events.source,
        events.record_id as page_day_id,
        cast(events.occurred_at as date) as viewed_on,
        cast(events.value as bigint) as page_views
    from events
)

select * from renamed
