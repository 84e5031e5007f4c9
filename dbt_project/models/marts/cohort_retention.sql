-- Share of each monthly cohort of newcomers still active 0-12 months after their first
-- contribution. The cohort size is the group size.
{%- set k_min = var('k_min', env_var('AGORA_K_MIN', '5')) | int %}
with

months as (
    select * from {{ ref('int_platform_months') }}
),

first_contributions as (
    select * from {{ ref('int_members_first_contributions') }}
),

active_monthly as (
    select * from {{ ref('int_members_active_monthly') }}
),

newcomers as (
    {{ all_rollup('first_contributions', ['first_contributions.first_month'], key='member_key') }}
),

active as (
    {{ all_rollup('active_monthly', ['active_monthly.activity_month'], key='member_key') }}
),

cohorts as (
    select
        newcomers.platform,
        newcomers.first_month as cohort_month,
        count(*) as cohort_size
    from newcomers
    group by newcomers.platform, newcomers.first_month
),

month_steps as (
    select month_offsets.month_offset as months_since_first
    from ({{ month_offsets(2) }}) as month_offsets
    where month_offsets.month_offset <= 12
),

grid as (
    -- Only offsets that have already happened: a month in the future is unknown, not 0 %.
    select
        cohorts.platform,
        cohorts.cohort_month,
        cohorts.cohort_size,
        month_steps.months_since_first
    from cohorts
    cross join month_steps
    inner join months
        on
            cohorts.platform = months.platform
            and {{ dbt.dateadd('month', 'month_steps.months_since_first', 'cohorts.cohort_month') }} = months.month  -- noqa: LT05
),

retained as (
    select
        newcomers.platform,
        newcomers.first_month as cohort_month,
        {{ dbt.datediff('newcomers.first_month', 'active.activity_month', 'month') }} as months_since_first,  -- noqa: LT05
        count(*) as retained_members
    from newcomers
    inner join active
        on
            newcomers.platform = active.platform
            and newcomers.member_key = active.member_key
    group by
        newcomers.platform,
        newcomers.first_month,
        {{ dbt.datediff('newcomers.first_month', 'active.activity_month', 'month') }}
),

final as (
    select
        cast(grid.cohort_month as date) as cohort_month,
        cast(grid.platform as {{ type_varchar() }}) as platform,
        cast(grid.months_since_first as integer) as months_since_first,
        -- A count of fewer than k_min accounts is never published as a count (the same
        -- rule as reactivated_members); the rate is a share of the whole cohort, published
        -- like every share whose denominator has at least k_min accounts.
        cast(
            case
                when coalesce(retained.retained_members, 0) >= {{ k_min }}
                    then {{ suppressed_value('retained.retained_members', 'grid.cohort_size', k_min) }}
            end
            as bigint
        ) as retained_members,
        cast(
            {{ suppressed_value(
                'cast(coalesce(retained.retained_members, 0) as ' ~ type_double() ~ ') / grid.cohort_size', 'grid.cohort_size', k_min
            ) }}
            as {{ type_double() }}
        ) as retention_rate,
        cast(grid.cohort_size as bigint) as group_size,
        cast({{ is_suppressed('grid.cohort_size', k_min) }} as boolean) as is_suppressed
    from grid
    left join retained
        on
            grid.platform = retained.platform
            and grid.cohort_month = retained.cohort_month
            and grid.months_since_first = retained.months_since_first
)

select * from final
