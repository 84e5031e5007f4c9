-- The reporting grid: every month from a platform's first record to the last month with
-- data on any platform, plus the `all` rollup. Months without activity stay visible.
with

posts as (
    select * from {{ ref('int_posts_unioned') }}
),

platform_starts as (
    select
        posts.platform,
        min(posts.posted_month) as first_month
    from posts
    group by posts.platform

    union all

    select
        'all' as platform,
        min(posts.posted_month) as first_month
    from posts
),

last_month as (
    select max(posts.posted_month) as last_month
    from posts
),

offsets as (
    {{ month_offsets(3) }}
),

final as (
    select
        platform_starts.platform,
        cast({{ dbt.dateadd('month', 'offsets.month_offset', 'platform_starts.first_month') }} as date) as month
    from platform_starts
    cross join offsets
    cross join last_month
    where {{ dbt.dateadd('month', 'offsets.month_offset', 'platform_starts.first_month') }} <= last_month.last_month
)

select * from final
