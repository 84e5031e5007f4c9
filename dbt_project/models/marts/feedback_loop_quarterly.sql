-- Acting on feedback by calendar quarter (all channels): the grain a small team reads when
-- its monthly counts fall below k_min. Quarters never overlap, so no two published values
-- differ by a small group (trailing windows would: their difference is one small month).
{%- set k_min = var('k_min', env_var('AGORA_K_MIN', '5')) | int %}
with

items as (
    select
        cast({{ dbt.date_trunc('quarter', 'feedback_items.received_at') }} as date) as quarter,
        feedback_items.acted_at,
        feedback_items.responded_at,
        cast({{ dbt.datediff('feedback_items.received_at', 'feedback_items.acted_at', 'second') }} as {{ type_double() }})  -- noqa: LT05
        / 86400 as days_to_action
    from {{ ref('int_feedback_items_pivoted') }} as feedback_items
    where feedback_items.received_at is not null
),

quarterly as (
    select
        items.quarter,
        count(*) as received,
        count(items.acted_at) as acted_on,
        count(items.responded_at) as responded,
        {{ median('items.days_to_action') }} as median_days_to_action
    from items
    group by items.quarter
),

final as (
    select
        cast(quarterly.quarter as date) as quarter,
        cast({{ suppressed_value('quarterly.received', 'quarterly.received', k_min) }} as bigint) as received,
        cast({{ suppressed_value('quarterly.acted_on', 'quarterly.received', k_min) }} as bigint) as acted_on,
        cast({{ suppressed_value('quarterly.responded', 'quarterly.received', k_min) }} as bigint) as responded,
        cast(
            {{ suppressed_value(
                'cast(quarterly.responded as ' ~ type_double() ~ ') / quarterly.received', 'quarterly.received', k_min
            ) }}
            as {{ type_double() }}
        ) as closed_loop_rate,
        cast(
            {{ suppressed_value('quarterly.median_days_to_action', 'quarterly.received', k_min) }}
            as {{ type_double() }}
        ) as median_days_to_action,
        cast(quarterly.received as bigint) as group_size,
        cast({{ is_suppressed('quarterly.received', k_min) }} as boolean) as is_suppressed
    from quarterly
)

select * from final
