-- interaction_density per month and platform (and `all`), unsuppressed: distinct
-- (member, member replied to) pairs between different members ÷ active members.
-- Incremental: a daily build recomputes the months from the month of the first day
-- staging can have changed (macro incremental_since), plus one kind of older month: a
-- reply counts only if its parent is a member (at any time), so an account whose first
-- member contribution is new turns older replies to them into pairs, in their months.
{{ config(
    materialized='incremental',
    unique_key='month',
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('month', month=true) %}
with

months as (
    select * from {{ ref('int_platform_months') }}
),

all_contributions as (
    select * from {{ ref('int_member_contributions_filtered') }}
),

members as (
    select
        first_contributions.platform,
        first_contributions.member_key as actor,
        first_contributions.first_contributed_at
    from {{ ref('int_members_first_contributions') }} as first_contributions
),

{% if since -%}
older_months as (
    select distinct all_contributions.posted_month as month
    from all_contributions
    inner join members
        on
            all_contributions.platform = members.platform
            and all_contributions.parent_actor = members.actor
    where
        members.first_contributed_at >= cast('{{ since }}' as date)
        and all_contributions.posted_at < cast('{{ since }}' as date)
),

{% endif -%}
recomputed_months as (
    select distinct months.month from months
    {%- if since %}
    where months.month >= cast('{{ since }}' as date)
    union all
    select older_months.month from older_months
    {%- endif %}
),

contributions as (
    select all_contributions.* from all_contributions
    {%- if since %}
    where all_contributions.posted_at >= cast('{{ since }}' as date)
    union all
    select all_contributions.* from all_contributions
    inner join older_months
        on all_contributions.posted_month = older_months.month
    {%- endif %}
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

active_monthly as (
    select active_monthly.*
    from {{ ref('int_members_active_monthly') }} as active_monthly
    inner join recomputed_months
        on active_monthly.activity_month = recomputed_months.month
),

active as (
    select
        active_monthly.platform,
        active_monthly.activity_month,
        count(*) as active_members
    from active_monthly
    group by active_monthly.platform, active_monthly.activity_month

    union all

    select
        'all' as platform,
        active_monthly.activity_month,
        count(*) as active_members
    from active_monthly
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
    inner join recomputed_months
        on months.month = recomputed_months.month
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
