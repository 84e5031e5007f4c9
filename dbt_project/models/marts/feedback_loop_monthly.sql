-- Acting on feedback: per month received and channel (and `all`), how many items were
-- acted on and how many got a response back to the person who gave it.
-- A month is published only when every month of its quarter (same channel) has at least
-- k_min items: feedback_loop_quarterly publishes the quarter's total, and the total minus
-- the published months would otherwise reveal a small month. Such a month keeps
-- is_suppressed (its own size) false and says `withheld_for_quarter`.
{%- set k_min = var('k_min', env_var('AGORA_K_MIN', '5')) | int %}
with

items as (
    select
        feedback_items.channel,
        feedback_items.received_at,
        feedback_items.acted_at,
        feedback_items.responded_at
    from {{ ref('int_feedback_items_pivoted') }} as feedback_items
    where feedback_items.received_at is not null
),

items_by_month as (
    select
        items.channel,
        cast({{ dbt.date_trunc('month', 'items.received_at') }} as date) as month,
        items.acted_at,
        items.responded_at,
        cast({{ dbt.datediff('items.received_at', 'items.acted_at', 'second') }} as {{ type_double() }})  -- noqa: LT05
        / 86400 as days_to_action
    from items
),

items_with_rollup as (
    {{ all_rollup(
        'items_by_month',
        ['items_by_month.month', 'items_by_month.acted_at', 'items_by_month.responded_at',
         'items_by_month.days_to_action'],
        dimension='channel',
    ) }}
),

monthly as (
    select
        items_with_rollup.month,
        coalesce(items_with_rollup.channel, 'unknown') as channel,
        count(*) as received,
        count(items_with_rollup.acted_at) as acted_on,
        count(items_with_rollup.responded_at) as responded,
        {{ median('items_with_rollup.days_to_action') }} as median_days_to_action
    from items_with_rollup
    group by items_with_rollup.month, coalesce(items_with_rollup.channel, 'unknown')
),

quarters as (
    select
        monthly.month,
        monthly.channel,
        min(monthly.received) over (
            partition by monthly.channel, {{ dbt.date_trunc('quarter', 'monthly.month') }}
        ) as smallest_month_of_quarter
    from monthly
),

final as (
    select
        cast(monthly.month as date) as month,
        cast(monthly.channel as {{ type_varchar() }}) as channel,
        cast({{ suppressed_value('monthly.received', 'quarters.smallest_month_of_quarter', k_min) }} as bigint)
            as received,
        cast({{ suppressed_value('monthly.acted_on', 'quarters.smallest_month_of_quarter', k_min) }} as bigint)
            as acted_on,
        cast(
            {{ suppressed_value(
                'cast(monthly.responded as ' ~ type_double() ~ ') / monthly.received',
                'quarters.smallest_month_of_quarter', k_min) }}
            as {{ type_double() }}
        ) as closed_loop_rate,
        cast(
            {{ suppressed_value('monthly.median_days_to_action', 'quarters.smallest_month_of_quarter', k_min) }}
            as {{ type_double() }}
        ) as median_days_to_action,
        cast(monthly.received as bigint) as group_size,
        cast({{ is_suppressed('monthly.received', k_min) }} as boolean) as is_suppressed,
        cast(
            quarters.smallest_month_of_quarter < {{ k_min }} and monthly.received >= {{ k_min }} as boolean
        ) as withheld_for_quarter
    from monthly
    inner join quarters
        on monthly.month = quarters.month and monthly.channel = quarters.channel
)

select * from final
