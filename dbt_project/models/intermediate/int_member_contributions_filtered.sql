-- Contributions of members: a member is a non-bot, non-staff account (design §5).
-- A view, like int_posts_unioned. member_key is the pseudonym itself (pseudonyms already
-- differ per platform); the `all` rollups prefix it with the platform on their much
-- smaller aggregates instead of concatenating a string on every row here.
{{ config(materialized='view') }}
with

posts as (
    select * from {{ ref('int_posts_unioned') }}
),

final as (
    select
        posts.source,
        posts.platform,
        posts.post_type,
        posts.post_id,
        posts.thread_id,
        posts.actor,
        posts.parent_actor,
        posts.actor as member_key,
        posts.posted_at,
        posts.posted_on,
        posts.posted_month
    from posts
    where
        posts.actor is not null
        and not posts.is_bot
        and not posts.is_staff
)

select * from final
