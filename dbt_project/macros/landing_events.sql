{#- Select every landed envelope row, whatever mix of files exists.

    Team-written sources add `title`/`text`; with `union_by_name` those columns simply do
    not exist until a team file has landed, so staging would not compile. The DuckDB version
    unions the files by name onto an empty row set that has them. It also stops the build with
    a readable message when the landing zone is empty, instead of DuckDB's bare IO error. -#}
{#- `since` (a 'YYYY-MM-DD' string or none): only records of landing partitions from that
    UTC day on. On DuckDB only the files of those partitions (`dt=` directories) are read,
    older files are not even opened; elsewhere the landing table is filtered on occurred_at. -#}
{% macro landing_events(relation, since=none) -%}
    {{ return(adapter.dispatch('landing_events')(relation, since)) }}
{%- endmacro %}

{#- PostgreSQL and others: `agora.pg_landing` loads the landing zone into a real table,
    title/text included. -#}
{% macro default__landing_events(relation, since=none) -%}
    select * from {{ relation }}
    {%- if since %}
    where cast(occurred_at at time zone 'UTC' as date) >= cast('{{ since }}' as date)
    {%- endif %}
{%- endmacro %}

{% macro duckdb__landing_events(relation, since=none) -%}
    {%- set pattern = var('landing_root', env_var('AGORA_LANDING_ROOT', 'data/landing')) ~ '/*/dt=*/*.parquet' -%}
    {#- Only when building: parse, compile, docs and sqlfluff must work with no data. -#}
    {%- if execute and flags.WHICH in ('run', 'build') -%}
        {%- set found = run_query("select count(*) from glob('" ~ pattern | replace("'", "''") ~ "')").columns[0].values()[0] -%}
        {%- if found == 0 -%}
            {{ exceptions.raise_compiler_error(
                "no landing data: no Parquet files match " ~ pattern
                ~ " (run `agora extract` first, or check paths.landing / AGORA_LANDING_ROOT)") }}
        {%- endif -%}
    {%- endif -%}
    {%- if since and execute -%}
        {#- union_by_name opens every file of a glob to read its schema, whatever the filter:
            list only the files of the partitions wanted (the newest one if none is). -#}
        {%- set files = run_query(
            "select file from glob('" ~ pattern | replace("'", "''") ~ "')"
            ~ " where regexp_extract(file, '/dt=([^/]+)/', 1) >= '" ~ since ~ "' order by file"
        ).columns[0].values() | list -%}
        {%- if not files -%}
            {%- set files = run_query(
                "select max(file) from glob('" ~ pattern | replace("'", "''") ~ "')"
            ).columns[0].values() | list -%}
        {%- endif -%}
        {%- set relation -%}
            read_parquet([
                {%- for f in files %}'{{ f | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
            ], union_by_name = true, hive_partitioning = true)
        {%- endset -%}
    {%- endif %}
    select * from (
        select
            cast(null as varchar) as title,
            cast(null as varchar) as text
        limit 0
    ) as team_columns
    union all by name
    select * from {{ relation }}
    {%- if since %}
    where dt >= cast('{{ since }}' as date)
    {%- endif %}
{%- endmacro %}
