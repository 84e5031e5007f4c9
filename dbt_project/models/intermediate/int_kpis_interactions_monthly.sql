-- interaction_density per month and platform (and `all`), unsuppressed: distinct
-- (member, member replied to) pairs between different members ÷ active members.
with

months as (
    select * from {{ ref('int_platform_months') }}
),

contributions as (
    select * from {{ ref('int_member_contributions_filtered') }}
),

members as (
    select distinct
        contributions.platform,
        contributions.actor
    from contributions
),

pairs as (
    -- Only replies to someone who is a member on that platform (not staff, not a bot).
    select distinct
        contributions.platform,
        contributions.posted_month,
        contributions.actor,
        contributions.parent_actor
    from contributions
    inner join members as parents
        on
            contributions.platform = parents.platform
            and contributions.parent_actor = parents.actor
    where contributions.parent_actor <> contributions.actor
),

pairs_with_rollup as (
    select
        pairs.platform,
        pairs.posted_month,
        count(*) as member_pairs
    from pairs
    group by pairs.platform, pairs.posted_month

    union all

    select
        'all' as platform,
        pairs.posted_month,
        count(*) as member_pairs
    from pairs
    group by pairs.posted_month
),

active as (
    select
        active_monthly.platform,
        active_monthly.activity_month,
        count(*) as active_members
    from {{ ref('int_members_active_monthly') }} as active_monthly
    group by active_monthly.platform, active_monthly.activity_month

    union all

    select
        'all' as platform,
        active_monthly.activity_month,
        count(*) as active_members
    from {{ ref('int_members_active_monthly') }} as active_monthly
    group by active_monthly.activity_month
),

final as (
    select
        months.month,
        months.platform,
        'interaction_density' as kpi,
        cast(coalesce(pairs_with_rollup.member_pairs, 0) as double precision)
        / nullif(active.active_members, 0) as value,
        coalesce(active.active_members, 0) as group_size
    from months
    left join active
        on
            months.platform = active.platform
            and months.month = active.activity_month
    left join pairs_with_rollup
        on
            months.platform = pairs_with_rollup.platform
            and months.month = pairs_with_rollup.posted_month
)

select * from final
