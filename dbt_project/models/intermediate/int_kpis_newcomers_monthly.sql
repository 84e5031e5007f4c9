-- new_members and returning_newcomer_rate per month and platform (and `all`), unsuppressed.
-- The month of a newcomer is the UTC month of their first contribution. The last 30 days
-- of data are provisional: a newcomer there may still come back.
-- Incremental: a member's row changes only when their first contribution is less than 30
-- days before the window (see int_members_first_contributions), so a daily build
-- recomputes the months from the month 30 days before the window on. Keyed on the month
-- alone, as int_members_active_monthly explains.
{{ config(
    materialized='incremental',
    unique_key='month',
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('month', extra_days=30, month=true) %}
with

months as (
    select * from {{ ref('int_platform_months') }}
    {%- if since %}
    where month >= cast('{{ since }}' as date)
    {%- endif %}
),

newcomers as (
    select
        first_contributions.platform,
        first_contributions.member_key,
        first_contributions.first_month,
        first_contributions.returned_within_30_days
    from {{ ref('int_members_first_contributions') }} as first_contributions
    {%- if since %}
    where first_contributions.first_month >= cast('{{ since }}' as date)
    {%- endif %}
),

newcomers_with_rollup as (
    {{ all_rollup('newcomers', ['newcomers.first_month', 'newcomers.returned_within_30_days'], key='member_key') }}
),

monthly as (
    select
        months.month,
        months.platform,
        count(newcomers_with_rollup.member_key) as new_members,
        sum(case when newcomers_with_rollup.returned_within_30_days then 1 else 0 end) as returned_members
    from months
    left join newcomers_with_rollup
        on
            months.platform = newcomers_with_rollup.platform
            and months.month = newcomers_with_rollup.first_month
    group by months.month, months.platform
),

final as (
    select
        monthly.month,
        monthly.platform,
        'new_members' as kpi,
        cast(monthly.new_members as {{ type_double() }}) as value,
        monthly.new_members as group_size
    from monthly

    union all

    select
        monthly.month,
        monthly.platform,
        'returning_newcomer_rate' as kpi,
        cast(monthly.returned_members as {{ type_double() }}) / nullif(monthly.new_members, 0) as value,
        monthly.new_members as group_size
    from monthly
)

select * from final
