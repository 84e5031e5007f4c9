-- Each thread with its first response by another non-bot account. Staff replies count
-- (answering is their job); the opener's own replies and bots' replies do not.
-- Incremental: a post from the first day staging can have changed (macro
-- incremental_since) can only change its own thread, however old (a late reply); a daily
-- build recomputes exactly those threads from all their posts.
{{ config(
    materialized='incremental',
    unique_key=['source', 'thread_id'],
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('opened_at') %}
with

all_posts as (
    select * from {{ ref('int_posts_unioned') }}
),

posts as (
    {{ rows_of_keys_touched_since('all_posts', ['source', 'thread_id'], since) }}
),

threads as (
    select posts.* from posts
    where posts.post_type = 'thread'
),

responses as (
    select posts.* from posts
    where
        posts.post_type = 'reply'
        and posts.actor is not null
        and not posts.is_bot
),

first_responses as (
    select
        threads.source,
        threads.thread_id,
        min(responses.posted_at) as first_response_at
    from threads
    inner join responses
        on
            threads.source = responses.source
            and threads.thread_id = responses.thread_id
            and threads.posted_at <= responses.posted_at
            and (threads.actor is null or threads.actor <> responses.actor)
    group by threads.source, threads.thread_id
),

final as (
    select
        threads.source,
        threads.platform,
        threads.thread_id,
        threads.posted_at as opened_at,
        threads.posted_month as opened_month,
        (threads.actor is not null and not threads.is_bot and not threads.is_staff) as opened_by_member,
        first_responses.first_response_at,
        {{ dbt.datediff('threads.posted_at', 'first_responses.first_response_at', 'second') }} / 3600.0  -- noqa: LT05
            as hours_to_first_response
    from threads
    left join first_responses
        on
            threads.source = first_responses.source
            and threads.thread_id = first_responses.thread_id
)

select * from final
