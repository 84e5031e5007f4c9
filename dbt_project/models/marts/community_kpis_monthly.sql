-- Community KPIs, one row per (month, platform, kpi). A value describing fewer than
-- k_min accounts (or threads) is NULL and flagged; its group size is still shown.
{%- set k_min = var('k_min', env_var('AGORA_K_MIN', '5')) | int %}
with

kpis as (
    select * from {{ ref('int_kpis_activity_monthly') }}
    union all
    select * from {{ ref('int_kpis_newcomers_monthly') }}
    union all
    select * from {{ ref('int_kpis_responses_monthly') }}
    union all
    select * from {{ ref('int_kpis_interactions_monthly') }}
    union all
    select * from {{ ref('int_kpis_pageviews_monthly') }}
),

final as (
    select
        cast(kpis.month as date) as month,
        cast(kpis.platform as {{ type_varchar() }}) as platform,
        cast(kpis.kpi as {{ type_varchar() }}) as kpi,
        cast({{ suppressed_value('kpis.value', 'kpis.group_size', k_min) }} as {{ type_double() }}) as value,
        cast(kpis.group_size as bigint) as group_size,
        cast({{ is_suppressed('kpis.group_size', k_min) }} as boolean) as is_suppressed,
        -- How the value was released: dbt builds exact values; with differential privacy
        -- on, the release step (agora/dp.py) replaces account-based rows before publishing.
        cast('exact' as {{ type_varchar() }}) as release,  -- noqa: RF04
        cast(null as {{ type_double() }}) as noise_scale
    from kpis
)

select * from final
