-- Each account a member replied to (on that platform), with the first time one did.
-- int_kpis_interactions_monthly reads it to find, when an account becomes a member, the
-- older months in which members had already replied to it (those replies become member
-- pairs) without scanning every reply of the history.
-- Incremental (see macro incremental_since for the invariant): an account first replied
-- to before the window keeps that first time; the others are recomputed from the window's
-- replies, which hold every reply to them from its first day on.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_where',
    incremental_predicates=['first_replied_at >= ' ~ lookback_start('first_replied_at', relation='{this}')],
) }}
{%- set since = incremental_since('first_replied_at') %}
with

replies as (
    select
        contributions.platform,
        contributions.parent_actor,
        contributions.posted_at
    from {{ ref('int_member_contributions_filtered') }} as contributions
    where
        contributions.parent_actor is not null
        and contributions.parent_actor <> contributions.actor
    {%- if since %}
        and contributions.posted_at >= cast('{{ since }}' as date)
        {%- endif %}
),

final as (
    select
        replies.platform,
        replies.parent_actor as account_key,
        min(replies.posted_at) as first_replied_at
    from replies
    {%- if since %}
    -- Accounts first replied to before the window are final.
    where not exists (
        select 1
        from {{ this }} as this_run
        where
            this_run.platform = replies.platform
            and this_run.account_key = replies.parent_actor
            and this_run.first_replied_at < cast('{{ since }}' as date)
    )
    {%- endif %}
    group by replies.platform, replies.parent_actor
)

select * from final
