-- What the team did, by month and kind. Activity, never mixed with community results.
with

activities as (
    select * from {{ ref('stg_team_activity__activities') }}
),

final as (
    select
        cast({{ dbt.date_trunc('month', 'activities.activity_on') }} as date) as month,
        cast(coalesce(activities.activity_kind, 'other') as {{ type_varchar() }}) as activity_kind,
        cast(count(*) as bigint) as activities
    from activities
    group by
        cast({{ dbt.date_trunc('month', 'activities.activity_on') }} as date),
        cast(coalesce(activities.activity_kind, 'other') as {{ type_varchar() }})
)

select * from final
