-- support_page_views per month for the wiki (and `all`), unsuppressed. Pageviews are
-- public aggregates; their group size is the number of views they add up.
with

pageviews as (
    select
        'mediawiki' as platform,
        cast({{ dbt.date_trunc('month', 'page_days.viewed_on') }} as date) as month,
        page_days.page_views
    from {{ ref('stg_mediawiki__pageviews') }} as page_days
),

pageviews_with_rollup as (
    {{ all_rollup('pageviews', ['pageviews.month', 'pageviews.page_views']) }}
),

final as (
    select
        pageviews_with_rollup.month,
        pageviews_with_rollup.platform,
        'support_page_views' as kpi,
        cast(sum(pageviews_with_rollup.page_views) as {{ type_double() }}) as value,
        coalesce(sum(pageviews_with_rollup.page_views), 0) as group_size
    from pageviews_with_rollup
    group by pageviews_with_rollup.month, pageviews_with_rollup.platform
)

select * from final
