-- One row per member and month with at least one contribution.
-- Incremental: a daily build recomputes whole months from the month of the first day
-- staging can have changed (macro incremental_since) and replaces those months. The key
-- is the month alone: delete+insert then deletes with `month in (...)`; a column list
-- would join every old row of a month to every new one (28 s at 10 M events).
{{ config(
    materialized='incremental',
    unique_key='activity_month',
    incremental_strategy='delete+insert',
) }}
{%- set since = incremental_since('activity_month', month=true) %}
with

contributions as (
    select * from {{ ref('int_member_contributions_filtered') }}
    {%- if since %}
    where posted_at >= cast('{{ since }}' as date)
    {%- endif %}
),

final as (
    select
        contributions.platform,
        contributions.member_key,
        contributions.posted_month as activity_month,
        count(*) as contributions
    from contributions
    group by contributions.platform, contributions.member_key, contributions.posted_month
)

select * from final
