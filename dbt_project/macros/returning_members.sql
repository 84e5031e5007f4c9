{#- Of the members active in a month, per platform and month: `retained_members` (active
    the month before too) and `reactivated_members` (not active the month before, first
    contribution earlier than it). The activity KPIs and the exact counts the
    differential-privacy release noises (int_dp_counts_monthly) read the same definition.
    `active`: (platform, member_key, activity_month) rows, one per member and month;
    `first_months`: (platform, member_key, first_month); `since`: only months from it. -#}
{% macro returning_members(active, first_months, since=none) -%}
    select
        {{ active }}.platform,
        {{ active }}.activity_month,
        sum(case when previous.member_key is not null then 1 else 0 end) as retained_members,
        sum(case
            when
                previous.member_key is null
                and {{ first_months }}.first_month < {{ dbt.dateadd('month', -1, active ~ '.activity_month') }}
                then 1
            else 0
        end) as reactivated_members
    from {{ active }}
    left join {{ active }} as previous
        on
            {{ active }}.platform = previous.platform
            and {{ active }}.member_key = previous.member_key
            and previous.activity_month = {{ dbt.dateadd('month', -1, active ~ '.activity_month') }}
    left join {{ first_months }}
        on
            {{ active }}.platform = {{ first_months }}.platform
            and {{ active }}.member_key = {{ first_months }}.member_key
    {%- if since %}
    where {{ active }}.activity_month >= cast('{{ since }}' as date)
    {%- endif %}
    group by {{ active }}.platform, {{ active }}.activity_month
{%- endmacro %}
