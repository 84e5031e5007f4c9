{#- Select every landed envelope row, whatever mix of files exists.

    Team-written sources add `title`/`text`; with `union_by_name` those columns simply do
    not exist until a team file has landed, so staging would not compile. The DuckDB version
    unions the files by name onto an empty row set that has them. It also stops the build with
    a readable message when the landing zone is empty, instead of DuckDB's bare IO error. -#}
{% macro landing_events(relation) -%}
    {{ return(adapter.dispatch('landing_events')(relation)) }}
{%- endmacro %}

{% macro default__landing_events(relation) -%}
    select * from {{ relation }}
{%- endmacro %}

{% macro duckdb__landing_events(relation) -%}
    {#- Only when building: parse, compile, docs and sqlfluff must work with no data. -#}
    {%- if execute and flags.WHICH in ('run', 'build') -%}
        {%- set pattern = var('landing_root', env_var('AGORA_LANDING_ROOT', 'data/landing')) ~ '/*/dt=*/*.parquet' -%}
        {%- set found = run_query("select count(*) from glob('" ~ pattern | replace("'", "''") ~ "')").columns[0].values()[0] -%}
        {%- if found == 0 -%}
            {{ exceptions.raise_compiler_error(
                "no landing data: no Parquet files match " ~ pattern
                ~ " (run `agora extract` first, or check paths.landing / AGORA_LANDING_ROOT)") }}
        {%- endif -%}
    {%- endif -%}
    select * from (
        select
            cast(null as varchar) as title,
            cast(null as varchar) as text
        limit 0
    ) as team_columns
    union all by name
    select * from {{ relation }}
{%- endmacro %}
