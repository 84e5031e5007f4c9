-- Each member's first contribution per platform, and whether they came back on a later
-- UTC day within 30 days of it (a same-day second post is not a return; day 30 is).
-- Incremental (see macro incremental_since for the invariant): a member whose first
-- contribution is more than 30 days before the window is final — the window can neither
-- hold an earlier contribution nor a day within 30 days of it. Every other member is
-- recomputed from this table and the window's contributions alone: a first contribution
-- before the window stays the first, and so does a first return day before it (the
-- earliest return is all the flag needs); anything on or after the window's first day is
-- taken from the window, which holds all of the member's contributions from that day on.
-- No contribution history is read.
{%- set recent = lookback_start('first_contributed_at', extra_days=30, relation='{this}') %}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_where',
    incremental_predicates=['first_contributed_on >= ' ~ recent],
) }}
{%- set since = incremental_since('first_contributed_at') %}
{%- set recent_since = incremental_since('first_contributed_at', extra_days=30) %}
with

contributions as (
    select * from {{ ref('int_member_contributions_filtered') }}
    {%- if since %}
    where posted_at >= cast('{{ since }}' as date)
    {%- endif %}
),

window_firsts as (
    select
        contributions.platform,
        contributions.member_key,
        min(contributions.posted_at) as first_contributed_at
    from contributions
    group by contributions.platform, contributions.member_key
),

{% if since -%}
known as (
    -- Every member already seen, with what is final about them.
    select
        this_run.platform,
        this_run.member_key,
        this_run.first_contributed_on >= cast('{{ recent_since }}' as date) as can_change,
        case
            when this_run.first_contributed_at < cast('{{ since }}' as date) then this_run.first_contributed_at
        end as first_before_window,
        case
            when this_run.first_returned_on < cast('{{ since }}' as date) then this_run.first_returned_on
        end as returned_before_window
    from {{ this }} as this_run
),

firsts as (
    select
        coalesce(known.platform, window_firsts.platform) as platform,
        coalesce(known.member_key, window_firsts.member_key) as member_key,
        coalesce(known.first_before_window, window_firsts.first_contributed_at) as first_contributed_at,
        known.returned_before_window
    from known
    full outer join window_firsts
        on
            known.platform = window_firsts.platform
            and known.member_key = window_firsts.member_key
    where
        coalesce(known.can_change, true)
        -- A member seen only in the window before, whose posts moved to another key.
        and coalesce(known.first_before_window, window_firsts.first_contributed_at) is not null
),

{% else -%}
    firsts as (
        select
            window_firsts.platform,
            window_firsts.member_key,
            window_firsts.first_contributed_at,
            cast(null as date) as returned_before_window
        from window_firsts
    ),

{% endif -%}
first_days as (
    select
        firsts.platform,
        firsts.member_key,
        firsts.first_contributed_at,
        firsts.returned_before_window,
        cast(firsts.first_contributed_at as date) as first_contributed_on,
        cast({{ dbt.date_trunc('month', 'firsts.first_contributed_at') }} as date) as first_month
    from firsts
),

returns as (
    select
        first_days.platform,
        first_days.member_key,
        min(later.posted_on) as first_returned_on
    from first_days
    inner join contributions as later
        on
            first_days.platform = later.platform
            and first_days.member_key = later.member_key
            and {{ dbt.datediff('first_days.first_contributed_on', 'later.posted_on', 'day') }} between 1 and 30  -- noqa: LT05
    where first_days.returned_before_window is null
    group by first_days.platform, first_days.member_key
),

final as (
    select
        first_days.platform,
        first_days.member_key,
        first_days.first_contributed_at,
        first_days.first_contributed_on,
        first_days.first_month,
        coalesce(first_days.returned_before_window, returns.first_returned_on) as first_returned_on,
        coalesce(first_days.returned_before_window, returns.first_returned_on) is not null as returned_within_30_days
    from first_days
    left join returns
        on
            first_days.platform = returns.platform
            and first_days.member_key = returns.member_key
)

select * from final
