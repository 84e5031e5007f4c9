-- Responsiveness to members' threads per month opened and platform (and `all`),
-- unsuppressed. Threads opened by staff (announcements) or bots are not questions
-- the community waits on, so they are left out.
-- Incremental: a thread's row changes (see int_threads_first_responses) only when it is
-- opened in the window or first answered in it, so a daily build recomputes the months
-- from the window's month on and the older months of threads first answered in the
-- window (a late answer), from int_threads_first_responses. Keyed on the month alone,
-- as int_members_active_monthly explains.
{{ config(
    materialized='incremental',
    unique_key='month',
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('month', month=true) %}
with

{% if since -%}
recomputed_months as (
    select distinct months.month
    from {{ ref('int_platform_months') }} as months
    where months.month >= cast('{{ since }}' as date)

    union

    select distinct first_responses.opened_month as month
    from {{ ref('int_threads_first_responses') }} as first_responses
    where first_responses.first_response_at >= cast('{{ since }}' as date)
),

{% endif -%}
months as (
    select * from {{ ref('int_platform_months') }}
    {%- if since %}
    where month in (select recomputed_months.month from recomputed_months)
    {%- endif %}
),

threads as (
    select
        first_responses.platform,
        first_responses.opened_month,
        first_responses.hours_to_first_response
    from {{ ref('int_threads_first_responses') }} as first_responses
    where
        first_responses.opened_by_member
    {%- if since %}
        and first_responses.opened_month in (select recomputed_months.month from recomputed_months)
        {%- endif %}
),

threads_with_rollup as (
    {{ all_rollup('threads', ['threads.opened_month', 'threads.hours_to_first_response']) }}
),

monthly as (
    select
        months.month,
        months.platform,
        count(threads_with_rollup.opened_month) as threads_opened,
        count(threads_with_rollup.hours_to_first_response) as threads_answered,
        sum(case when threads_with_rollup.hours_to_first_response <= 48 then 1 else 0 end) as answered_within_48h,
        {{ median('threads_with_rollup.hours_to_first_response') }} as median_hours
    from months
    left join threads_with_rollup
        on
            months.platform = threads_with_rollup.platform
            and months.month = threads_with_rollup.opened_month
    group by months.month, months.platform
),

final as (
    select
        monthly.month,
        monthly.platform,
        'median_hours_to_first_response' as kpi,
        cast(monthly.median_hours as {{ type_double() }}) as value,
        monthly.threads_answered as group_size
    from monthly

    union all

    select
        monthly.month,
        monthly.platform,
        'response_rate_48h' as kpi,
        cast(monthly.answered_within_48h as {{ type_double() }}) / nullif(monthly.threads_opened, 0) as value,
        monthly.threads_opened as group_size
    from monthly
)

select * from final
