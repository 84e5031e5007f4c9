-- Exact account counts per month and platform that the differential-privacy release
-- (agora/dp.py) adds noise to; never published. One row per (platform, month, kpi) with
-- a non-zero count: the release fills the configured grid itself, so which rows exist
-- here tells it nothing it publishes. Each account adds at most 1 to a count (and at
-- most `contribution_bound` to contributions, the clamp the noise scale is derived from).
-- A view: it is read once per release, after the build.
{{ config(materialized='view') }}
{%- set bound = var('dp_max_contributions', env_var('AGORA_DP_MAX_CONTRIBUTIONS', '10')) | int %}
with

active as (
    select * from {{ ref('int_members_active_monthly') }}
),

first_contributions as (
    select * from {{ ref('int_members_first_contributions') }}
),

activity as (
    select
        active.platform,
        active.activity_month as month,
        count(*) as active_members,
        sum(case when active.contributions > {{ bound }} then {{ bound }} else active.contributions end)
            as contributions
    from active
    group by active.platform, active.activity_month
),

returning_counts as (
    {{ returning_members('active', 'first_contributions') }}
),

newcomers as (
    select
        first_contributions.platform,
        first_contributions.first_month as month,
        count(*) as new_members,
        sum(case when first_contributions.returned_within_30_days then 1 else 0 end) as returned_newcomers
    from first_contributions
    group by first_contributions.platform, first_contributions.first_month
),

counts as (
    select
        activity.platform,
        activity.month,
        'active_members' as kpi,
        activity.active_members as value
    from activity
    union all
    select
        activity.platform,
        activity.month,
        'contributions' as kpi,
        activity.contributions as value
    from activity
    union all
    select
        returning_counts.platform,
        returning_counts.activity_month as month,
        'retained_members' as kpi,
        returning_counts.retained_members as value
    from returning_counts
    union all
    select
        returning_counts.platform,
        returning_counts.activity_month as month,
        'reactivated_members' as kpi,
        returning_counts.reactivated_members as value
    from returning_counts
    union all
    select
        newcomers.platform,
        newcomers.month,
        'new_members' as kpi,
        newcomers.new_members as value
    from newcomers
    union all
    select
        newcomers.platform,
        newcomers.month,
        'returned_newcomers' as kpi,
        newcomers.returned_newcomers as value
    from newcomers
),

final as (
    select
        cast(counts.platform as {{ type_varchar() }}) as platform,
        cast(counts.month as date) as month,
        cast(counts.kpi as {{ type_varchar() }}) as kpi,
        cast(counts.value as bigint) as value,
        cast({{ bound }} as integer) as contribution_bound
    from counts
    where counts.value > 0
)

select * from final
