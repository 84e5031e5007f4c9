-- Net Promoter Score by quarter: % promoters (9-10) - % detractors (0-6).
{%- set k_min = var('k_min', env_var('AGORA_K_MIN', '5')) | int %}
with

responses as (
    select * from {{ ref('stg_survey__responses') }}
    where score is not null
),

quarterly as (
    select
        cast({{ dbt.date_trunc('quarter', 'responses.answered_at') }} as date) as quarter,
        count(*) as respondents,
        sum(case when responses.score >= 9 then 1 else 0 end) as promoters,
        sum(case when responses.score <= 6 then 1 else 0 end) as detractors
    from responses
    group by cast({{ dbt.date_trunc('quarter', 'responses.answered_at') }} as date)
),

final as (
    select
        cast(quarterly.quarter as date) as quarter,
        cast({{ suppressed_value('quarterly.respondents', 'quarterly.respondents', k_min) }} as bigint) as respondents,
        cast(
            {{ suppressed_value(
                'cast(quarterly.promoters as ' ~ type_double() ~ ') / quarterly.respondents', 'quarterly.respondents', k_min
            ) }}
            as {{ type_double() }}
        ) as promoters_share,
        cast(
            {{ suppressed_value(
                'cast(quarterly.detractors as ' ~ type_double() ~ ') / quarterly.respondents', 'quarterly.respondents', k_min
            ) }}
            as {{ type_double() }}
        ) as detractors_share,
        cast(
            {{ suppressed_value(
                'cast(100 * (quarterly.promoters - quarterly.detractors) as ' ~ type_double() ~ ') / quarterly.respondents',
                'quarterly.respondents', k_min) }}
            as {{ type_double() }}
        ) as nps,
        cast(quarterly.respondents as bigint) as group_size,
        cast({{ is_suppressed('quarterly.respondents', k_min) }} as boolean) as is_suppressed
    from quarterly
)

select * from final
