-- Activity and retention KPIs per month and platform (and `all`), unsuppressed:
-- contributions, active_members, retention_rate, churn_rate, reactivated_members,
-- contributor_absence_factor, top_decile_share.
-- Incremental: a changed day can change its own month and, through retention and
-- reactivation (which look back), every later month, never an earlier one. A daily build
-- recomputes the months from the month of the first day staging can have changed (macro
-- incremental_since; in practice the last one or two), reading the month before them for
-- retention and each member's first month (int_members_first_contributions) for
-- reactivation: active in an earlier month than the previous one = first contribution
-- before the previous month, so no older month is read. Keyed on the month alone, as
-- int_members_active_monthly explains.
{{ config(
    materialized='incremental',
    unique_key='month',
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('month', month=true) %}
with

months as (
    select * from {{ ref('int_platform_months') }}
    {%- if since %}
    where month >= {{ dbt.dateadd('month', -1, "cast('" ~ since ~ "' as date)") }}
    {%- endif %}
),

active as (
    select * from {{ ref('int_members_active_monthly') }}
    {%- if since %}
    where activity_month >= {{ dbt.dateadd('month', -1, "cast('" ~ since ~ "' as date)") }}
    {%- endif %}
),

member_first_months as (
    select
        first_contributions.platform,
        first_contributions.member_key,
        first_contributions.first_month
    from {{ ref('int_members_first_contributions') }} as first_contributions
    {%- if since %}
    -- Only members active in a recomputed month: the others cannot be reactivated there.
    where exists (
        select 1 from active
        where
            active.platform = first_contributions.platform
            and active.member_key = first_contributions.member_key
    )
    {%- endif %}
),

first_months as (
    {{ all_rollup('member_first_months', ['member_first_months.first_month'], key='member_key') }}
),

active_with_rollup as (
    {{ all_rollup('active', ['active.activity_month', 'active.contributions'], key='member_key') }}
),

ranked as (
    -- Members ranked by contributions within their month, for the concentration KPIs.
    select
        active_with_rollup.platform,
        active_with_rollup.activity_month,
        active_with_rollup.contributions,
        row_number() over (
            partition by active_with_rollup.platform, active_with_rollup.activity_month
            order by active_with_rollup.contributions desc, active_with_rollup.member_key asc
        ) as contribution_rank,
        sum(active_with_rollup.contributions) over (
            partition by active_with_rollup.platform, active_with_rollup.activity_month
            order by active_with_rollup.contributions desc, active_with_rollup.member_key asc
            rows between unbounded preceding and current row
        ) as running_contributions,
        sum(active_with_rollup.contributions) over (
            partition by active_with_rollup.platform, active_with_rollup.activity_month
        ) as month_contributions,
        count(*) over (
            partition by active_with_rollup.platform, active_with_rollup.activity_month
        ) as month_members
    from active_with_rollup
    {%- if since %}
    where active_with_rollup.activity_month >= cast('{{ since }}' as date)
    {%- endif %}
),

concentration as (
    select
        ranked.platform,
        ranked.activity_month,
        -- CHAOSS contributor absence factor: fewest members making > 50 % of contributions.
        min(case when ranked.running_contributions * 2 > ranked.month_contributions then ranked.contribution_rank end)
            as absence_factor,
        -- The most active 10 % of members, rounded up so a month always has at least one.
        sum(
            case
                when ranked.contribution_rank <= ceil(ranked.month_members / 10.0) then ranked.contributions
                else 0
            end
        ) as top_decile_contributions
    from ranked
    group by ranked.platform, ranked.activity_month
),

monthly as (
    select
        months.month,
        months.platform,
        count(active_with_rollup.member_key) as active_members,
        coalesce(sum(active_with_rollup.contributions), 0) as contributions
    from months
    left join active_with_rollup
        on
            months.platform = active_with_rollup.platform
            and months.month = active_with_rollup.activity_month
    group by months.month, months.platform
),

returning_history as (
    -- Each member-month joined with the month before and the member's first month: a join
    -- with one month, not a window over every earlier month.
    {{ returning_members('active_with_rollup', 'first_months', since) }}
),

with_previous as (
    select
        monthly.month,
        monthly.platform,
        monthly.active_members,
        monthly.contributions,
        concentration.absence_factor,
        concentration.top_decile_contributions,
        coalesce(previous.active_members, 0) as previous_active_members,
        coalesce(returning_history.retained_members, 0) as retained_members,
        coalesce(returning_history.reactivated_members, 0) as reactivated_members
    from monthly
    left join monthly as previous
        on
            monthly.platform = previous.platform
            and previous.month = {{ dbt.dateadd('month', -1, 'monthly.month') }}
    left join returning_history
        on
            monthly.platform = returning_history.platform
            and monthly.month = returning_history.activity_month
    left join concentration
        on
            monthly.platform = concentration.platform
            and monthly.month = concentration.activity_month
    {%- if since %}
    where monthly.month >= cast('{{ since }}' as date)
    {%- endif %}
),

final as (
    select
        with_previous.month,
        with_previous.platform,
        'contributions' as kpi,
        cast(with_previous.contributions as {{ type_double() }}) as value,
        with_previous.active_members as group_size
    from with_previous

    union all

    select
        with_previous.month,
        with_previous.platform,
        'active_members' as kpi,
        cast(with_previous.active_members as {{ type_double() }}) as value,
        with_previous.active_members as group_size
    from with_previous

    union all

    select
        with_previous.month,
        with_previous.platform,
        'retention_rate' as kpi,
        cast(with_previous.retained_members as {{ type_double() }})
        / nullif(with_previous.previous_active_members, 0) as value,
        with_previous.previous_active_members as group_size
    from with_previous

    union all

    select
        with_previous.month,
        with_previous.platform,
        'churn_rate' as kpi,
        1 - cast(with_previous.retained_members as {{ type_double() }})
        / nullif(with_previous.previous_active_members, 0) as value,
        with_previous.previous_active_members as group_size
    from with_previous

    union all

    select
        with_previous.month,
        with_previous.platform,
        'reactivated_members' as kpi,
        cast(with_previous.reactivated_members as {{ type_double() }}) as value,
        with_previous.reactivated_members as group_size
    from with_previous

    union all

    select
        with_previous.month,
        with_previous.platform,
        'contributor_absence_factor' as kpi,
        cast(with_previous.absence_factor as {{ type_double() }}) as value,
        with_previous.active_members as group_size
    from with_previous

    union all

    select
        with_previous.month,
        with_previous.platform,
        'top_decile_share' as kpi,
        cast(with_previous.top_decile_contributions as {{ type_double() }})
        / nullif(with_previous.contributions, 0) as value,
        with_previous.active_members as group_size
    from with_previous
)

select * from final
