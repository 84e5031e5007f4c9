-- Share of each monthly cohort of newcomers still active 0-12 months after their first
-- contribution. The cohort size is the group size.
{%- set k_min = var('k_min', env_var('AGORA_K_MIN', '5')) | int %}
with

months as (
    select * from {{ ref('int_platform_months') }}
),

newcomers as (
    select
        first_contributions.platform,
        first_contributions.member_key,
        first_contributions.first_month
    from {{ ref('int_members_first_contributions') }} as first_contributions

    union all

    select
        'all' as platform,
        first_contributions.member_key,
        first_contributions.first_month
    from {{ ref('int_members_first_contributions') }} as first_contributions
),

active as (
    select
        active_monthly.platform,
        active_monthly.member_key,
        active_monthly.activity_month
    from {{ ref('int_members_active_monthly') }} as active_monthly

    union all

    select
        'all' as platform,
        active_monthly.member_key,
        active_monthly.activity_month
    from {{ ref('int_members_active_monthly') }} as active_monthly
),

cohorts as (
    select
        newcomers.platform,
        newcomers.first_month as cohort_month,
        count(*) as cohort_size
    from newcomers
    group by newcomers.platform, newcomers.first_month
),

offsets as (
    select offsets.month_offset as months_since_first
    from ({{ month_offsets(2) }}) as offsets
    where offsets.month_offset <= 12
),

grid as (
    -- Only offsets that have already happened: a month in the future is unknown, not 0 %.
    select
        cohorts.platform,
        cohorts.cohort_month,
        cohorts.cohort_size,
        offsets.months_since_first
    from cohorts
    cross join offsets
    inner join months
        on
            months.platform = cohorts.platform
            and months.month = {{ dbt.dateadd('month', 'offsets.months_since_first', 'cohorts.cohort_month') }}
),

retained as (
    select
        newcomers.platform,
        newcomers.first_month as cohort_month,
        {{ dbt.datediff('newcomers.first_month', 'active.activity_month', 'month') }} as months_since_first,
        count(*) as retained_members
    from newcomers
    inner join active
        on
            active.platform = newcomers.platform
            and active.member_key = newcomers.member_key
    group by
        newcomers.platform,
        newcomers.first_month,
        {{ dbt.datediff('newcomers.first_month', 'active.activity_month', 'month') }}
),

final as (
    select
        cast(grid.cohort_month as date) as cohort_month,
        cast(grid.platform as varchar) as platform,
        cast(grid.months_since_first as integer) as months_since_first,
        cast({{ suppressed_value('coalesce(retained.retained_members, 0)', 'grid.cohort_size', k_min) }} as bigint)
            as retained_members,
        cast(
            {{ suppressed_value('coalesce(retained.retained_members, 0) * 1.0 / grid.cohort_size', 'grid.cohort_size', k_min) }}
            as double precision
        ) as retention_rate,
        cast(grid.cohort_size as bigint) as group_size,
        cast({{ is_suppressed('grid.cohort_size', k_min) }} as boolean) as is_suppressed
    from grid
    left join retained
        on
            retained.platform = grid.platform
            and retained.cohort_month = grid.cohort_month
            and retained.months_since_first = grid.months_since_first
)

select * from final
