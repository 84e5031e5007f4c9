-- The team's learnings, with their tags and the KPIs they relate to.
with

entries as (
    select * from {{ ref('stg_learnings__entries') }}
),

final as (
    select
        cast(entries.learned_on as date) as learned_on,
        cast(entries.title as {{ type_varchar() }}) as title,
        cast(entries.text as {{ type_varchar() }}) as text,
        cast(entries.tags as {{ type_varchar() }}) as tags,
        cast(entries.kpis as {{ type_varchar() }}) as kpis
    from entries
)

select * from final
