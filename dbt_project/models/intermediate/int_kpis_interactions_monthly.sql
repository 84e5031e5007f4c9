-- interaction_density per month and platform (and `all`), unsuppressed: distinct
-- (member, member replied to) pairs between different members ÷ active members.
-- Incremental: a daily build recomputes the months from the month of the first day
-- staging can have changed (macro incremental_since), plus one kind of older month: a
-- reply counts only if its parent is a member (at any time), so an account whose first
-- member contribution is new turns older replies to them into pairs, in their months: a
-- build then recomputes every month from the first reply to such an account (found in
-- int_accounts_first_replied_to, not by scanning every older reply; rare).
-- depends_on: {{ ref('int_accounts_first_replied_to') }}
{{ config(
    materialized='incremental',
    unique_key='month',
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('month', month=true) %}
{%- set older_from = none %}
{%- if since %}
    {#- Members new in the window who had been replied to before it: every month from the
        first such reply to the window can hold replies that are now member pairs. Almost
        always none; a literal lets the scan below skip every other month. -#}
    {%- set older_from = run_query(
        "select min(cast(" ~ dbt.date_trunc('month', 'replied_to.first_replied_at') ~ " as date))"
        ~ " from " ~ ref('int_accounts_first_replied_to') ~ " as replied_to"
        ~ " inner join " ~ ref('int_members_first_contributions') ~ " as members"
        ~ " on replied_to.platform = members.platform and replied_to.account_key = members.member_key"
        ~ " where members.first_contributed_at >= cast('" ~ since ~ "' as date)"
        ~ " and replied_to.first_replied_at < cast('" ~ since ~ "' as date)"
    ).columns[0].values()[0] %}
{%- endif %}
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

recomputed_months as (
    select distinct months.month from months
    {%- if since %}
    where months.month >= cast('{{ older_from or since }}' as date)
    {%- endif %}
),

contributions as (
    select all_contributions.* from all_contributions
    {%- if since %}
    where all_contributions.posted_at >= cast('{{ older_from or since }}' as date)
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

pair_rows as (
    {{ all_rollup('pairs', ['pairs.posted_month']) }}
),

pairs_with_rollup as (
    select
        pair_rows.platform,
        pair_rows.posted_month,
        count(*) as member_pairs
    from pair_rows
    group by pair_rows.platform, pair_rows.posted_month
),

active_monthly as (
    select active_monthly.*
    from {{ ref('int_members_active_monthly') }} as active_monthly
    inner join recomputed_months
        on active_monthly.activity_month = recomputed_months.month
),

active_rows as (
    {{ all_rollup('active_monthly', ['active_monthly.activity_month']) }}
),

active as (
    select
        active_rows.platform,
        active_rows.activity_month,
        count(*) as active_members
    from active_rows
    group by active_rows.platform, active_rows.activity_month
),

final as (
    select
        months.month,
        months.platform,
        'interaction_density' as kpi,
        cast(coalesce(pairs_with_rollup.member_pairs, 0) as {{ type_double() }})
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
