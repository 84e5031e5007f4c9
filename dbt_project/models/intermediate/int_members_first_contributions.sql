-- Each member's first contribution per platform, and whether they came back on a later
-- UTC day within 30 days of it (a same-day second post is not a return; day 30 is).
-- Incremental: only members with a contribution from the first day staging can have
-- changed (macro incremental_since) can get a new first contribution or a new return;
-- a daily build recomputes exactly those members from all their contributions.
{{ config(
    materialized='incremental',
    unique_key=['platform', 'member_key'],
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('first_contributed_at') %}
with

all_contributions as (
    select * from {{ ref('int_member_contributions_filtered') }}
),

contributions as (
    {{ rows_of_keys_touched_since('all_contributions', ['platform', 'member_key'], since) }}
),

firsts as (
    select
        contributions.platform,
        contributions.member_key,
        min(contributions.posted_at) as first_contributed_at
    from contributions
    group by contributions.platform, contributions.member_key
),

first_days as (
    select
        firsts.platform,
        firsts.member_key,
        firsts.first_contributed_at,
        cast(firsts.first_contributed_at as date) as first_contributed_on,
        cast({{ dbt.date_trunc('month', 'firsts.first_contributed_at') }} as date) as first_month
    from firsts
),

returns as (
    select
        first_days.platform,
        first_days.member_key,
        count(distinct later.posted_on) as return_days
    from first_days
    inner join contributions as later
        on
            first_days.platform = later.platform
            and first_days.member_key = later.member_key
            and {{ dbt.datediff('first_days.first_contributed_on', 'later.posted_on', 'day') }} between 1 and 30  -- noqa: LT05
    group by first_days.platform, first_days.member_key
),

final as (
    select
        first_days.platform,
        first_days.member_key,
        first_days.first_contributed_at,
        first_days.first_contributed_on,
        first_days.first_month,
        coalesce(returns.return_days, 0) > 0 as returned_within_30_days
    from first_days
    left join returns
        on
            first_days.platform = returns.platform
            and first_days.member_key = returns.member_key
)

select * from final
