-- The team's learnings, with their tags and the KPIs they relate to.
with

entries as (
    select * from {{ ref('stg_learnings__entries') }}
),

final as (
    select
        cast(entries.learned_on as date) as learned_on,
        cast(entries.title as varchar) as title,
        cast(entries.text as varchar) as text,
        cast(entries.tags as varchar) as tags,
        cast(entries.kpis as varchar) as kpis
    from entries
)

select * from final
