-- One row per member and month with at least one contribution.
with

contributions as (
    select * from {{ ref('int_member_contributions_filtered') }}
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
