-- One row per landed record. Overlapping extraction windows can land the same record in
-- two files: keep the copy read last, so an edited or re-read record counts once.
-- Incremental, unlike the other staging models: it is the one model that opens the
-- landing zone's many small Parquet files (one per source and day). A full build reads
-- them all once; a daily build reads only the partitions from `landing_lookback_days`
-- before the newest record already loaded and replaces the records it finds again.
{{ config(
    materialized='incremental',
    unique_key=['source', 'record_type', 'record_id'],
    incremental_strategy='delete+insert',
) }}

{%- set since = none %}
{%- if execute and is_incremental() %}
    {%- set lookback = var('landing_lookback_days', 7) | int %}
    {%- set newest = run_query(
        'select cast(' ~ dbt.dateadd('day', -lookback, 'max(occurred_at)') ~ ' as date) from ' ~ this
    ).columns[0].values()[0] %}
    {%- set since = newest | string if newest is not none else none %}
{%- endif %}

with

ranked as (
    {{ latest_landed_copies(source('landing', 'events'), since) }}
),

renamed as (
    select
        cast(ranked.source as {{ type_varchar() }}) as source,
        cast(ranked.platform as {{ type_varchar() }}) as platform,
        cast(ranked.record_type as {{ type_varchar() }}) as record_type,
        cast(ranked.record_id as {{ type_varchar() }}) as record_id,
        cast(ranked.thread_id as {{ type_varchar() }}) as thread_id,
        cast(ranked.parent_id as {{ type_varchar() }}) as parent_id,
        cast(ranked.actor as {{ type_varchar() }}) as actor,
        cast(ranked.parent_actor as {{ type_varchar() }}) as parent_actor,
        -- Naive UTC timestamps: month and day boundaries are UTC on every engine and host.
        {{ utc_timestamp('ranked.occurred_at') }} as occurred_at,
        cast(ranked.value as {{ type_double() }}) as value,
        ranked.tags,
        cast(ranked.title as {{ type_varchar() }}) as title,
        cast(ranked.text as {{ type_varchar() }}) as text,
        {{ utc_timestamp('ranked.extracted_at') }} as extracted_at,
        cast(ranked.run_id as {{ type_varchar() }}) as run_id,
        cast(ranked.connector_version as {{ type_varchar() }}) as connector_version,
        coalesce(ranked.is_bot, false) as is_bot,
        coalesce(ranked.is_staff, false) as is_staff
    from ranked
)

select * from renamed
