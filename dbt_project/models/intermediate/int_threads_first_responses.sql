-- Each thread with its first response by another non-bot account. Staff replies count
-- (answering is their job); the opener's own replies and bots' replies do not.
-- Incremental (see macro incremental_since for the invariant): a thread opened before
-- the window whose first response is also before it is final — a reply in the window
-- comes later. Every other thread is recomputed from the window's posts alone: one opened
-- in the window has all its replies there (a response is never earlier than its thread),
-- and one opened earlier but still unanswered, or first answered in the window, takes its
-- opener from this table and its first response from the window (any reply before the
-- window would have been its first response already). No post history is read.
{%- set still_open = lookback_start('opened_at', relation='{this}') %}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_where',
    incremental_predicates=[
        'opened_at >= ' ~ still_open ~ ' or first_response_at is null or first_response_at >= ' ~ still_open
    ],
) }}
{%- set since = incremental_since('opened_at') %}
with

posts as (
    select * from {{ ref('int_posts_unioned') }}
    {%- if since %}
    where posted_at >= cast('{{ since }}' as date)
    {%- endif %}
),

threads as (
    select
        posts.source,
        posts.platform,
        posts.thread_id,
        posts.posted_at as opened_at,
        posts.posted_month as opened_month,
        posts.actor as opened_by,
        (posts.actor is not null and not posts.is_bot and not posts.is_staff) as opened_by_member
    from posts
    where posts.post_type = 'thread'
    {%- if since %}

    union all

    -- Opened before the window, not answered before it: the only older rows that can change.
    select
        this_run.source,
        this_run.platform,
        this_run.thread_id,
        this_run.opened_at,
        this_run.opened_month,
        this_run.opened_by,
        this_run.opened_by_member
    from {{ this }} as this_run
    where
        this_run.opened_at < cast('{{ since }}' as date)
        and (this_run.first_response_at is null or this_run.first_response_at >= cast('{{ since }}' as date))
    {%- endif %}
),

responses as (
    select posts.* from posts
    where
        posts.post_type = 'reply'
        and posts.actor is not null
        and not posts.is_bot
),

-- A reply counts unless it is the opener's own or earlier than its thread: an anti-join
-- (left join ... is null). The inner join it replaces carried each thread's opener into the
-- aggregate and ran out of DuckDB's 2 GB memory_limit at 100 M events instead of spilling.
first_responses as (
    select
        responses.source,
        responses.thread_id,
        min(responses.posted_at) as first_response_at
    from responses
    left join threads as disqualifying
        on
            responses.source = disqualifying.source
            and responses.thread_id = disqualifying.thread_id
            and (responses.actor = disqualifying.opened_by or responses.posted_at < disqualifying.opened_at)
    where disqualifying.thread_id is null
    group by responses.source, responses.thread_id
),

final as (
    select
        threads.source,
        threads.platform,
        threads.thread_id,
        threads.opened_at,
        threads.opened_month,
        threads.opened_by_member,
        threads.opened_by,
        first_responses.first_response_at,
        cast({{ dbt.datediff('threads.opened_at', 'first_responses.first_response_at', 'second') }} as {{ type_double() }})  -- noqa: LT05
        / 3600 as hours_to_first_response
    from threads
    left join first_responses
        on
            threads.source = first_responses.source
            and threads.thread_id = first_responses.thread_id
)

select * from final
