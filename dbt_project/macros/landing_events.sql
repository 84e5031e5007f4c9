{#- Every landed envelope row once: per record (source, record_type, record_id) the copy
    read last (macro latest_copies). Overlapping extraction windows land the same record
    in two files.

    `since` (a 'YYYY-MM-DD' string or none): only records of landing partitions from that
    UTC day on. On DuckDB only the files of those partitions (`dt=` directories) are read,
    older files are not even opened; elsewhere the landing table is filtered on occurred_at. -#}
{% macro latest_landed_copies(relation, since=none) -%}
    {{ return(adapter.dispatch('latest_landed_copies')(relation, since)) }}
{%- endmacro %}

{#- PostgreSQL and others: `agora.pg_landing` loads the landing zone into a real table,
    title/text included. Spark reads the files in place (macro spark__latest_landed_copies). -#}
{% macro default__latest_landed_copies(relation, since=none) -%}
    {{ latest_copies(
        '(select * from ' ~ relation
        ~ (" where cast(occurred_at at time zone 'UTC' as date) >= cast('" ~ since ~ "' as date)" if since else '')
        ~ ')'
    ) }}
{%- endmacro %}

{#- DuckDB reads the Parquet files themselves.

    Team-written sources add `title`/`text`; with `union_by_name` those columns do not
    exist until a team file has landed, so the files are unioned by name onto an empty row
    set that has them. An empty landing zone stops the build with a readable message
    instead of DuckDB's bare IO error.

    Deduplication: most records land once. Ranking every row by its key costs as much as
    copying them (10 M events: 49 s CPU with a hash-based ranking against 33 s for the
    plain copy), so one narrow pass first finds the files holding a key that occurs more
    than once in scope (~7 s CPU: a 64-bit hash of the key, counted); only those files'
    rows are ranked, every other file is copied as it is. A hash collision only sends a
    few more files through the ranking, which compares the key itself. -#}
{% macro duckdb__latest_landed_copies(relation, since=none) -%}
    {%- set pattern = var('landing_root', env_var('AGORA_LANDING_ROOT', 'data/landing')) ~ '/*/dt=*/*.parquet' -%}
    {%- set building = execute and flags.WHICH in ('run', 'build') -%}
    {#- Only when building: parse, compile, docs and sqlfluff must work with no data. -#}
    {%- if building -%}
        {%- set found = run_query("select count(*) from glob(" ~ sql_string_literal(pattern) ~ ")").columns[0].values()[0] -%}
        {%- if found == 0 -%}
            {{ exceptions.raise_compiler_error(
                "no landing data: no Parquet files match " ~ pattern
                ~ " (run `agora extract` first, or check paths.landing / AGORA_LANDING_ROOT)") }}
        {%- endif -%}
    {%- endif -%}
    {%- set scope = sql_string_literal(pattern) -%}
    {%- if since and execute -%}
        {#- union_by_name opens every file of a glob to read its schema, whatever the filter:
            list only the files of the partitions wanted (the newest one if none is). -#}
        {%- set files = run_query(
            "select file from glob(" ~ sql_string_literal(pattern) ~ ")"
            ~ " where regexp_extract(file, '/dt=([^/]+)/', 1) >= '" ~ since ~ "' order by file"
        ).columns[0].values() | list -%}
        {%- if not files -%}
            {%- set files = run_query(
                "select max(file) from glob(" ~ sql_string_literal(pattern) ~ ")"
            ).columns[0].values() | list -%}
        {%- endif -%}
        {%- set scope = sql_string_list(files) -%}
    {%- endif -%}
    {%- set read -%}
        read_parquet({{ scope }}, union_by_name = true, hive_partitioning = true, filename = true)
    {%- endset -%}
    {%- set dt_filter = "dt >= cast('" ~ since ~ "' as date)" if since else "true" -%}
    {#- Unknown outside a build: rank every file (correct, only slower). -#}
    {%- set repeated = none -%}
    {%- if building -%}
        {%- set repeated = run_query(
            "select distinct filename from ("
            ~ "select filename, count(*) over (partition by hash(source, record_type, record_id)) as copies"
            ~ " from " ~ read ~ " where " ~ dt_filter ~ ") as keyed where copies > 1 order by filename"
        ).columns[0].values() | list -%}
    {%- endif %}
    with

    landed as not materialized (
        select * from (
            select
                cast(null as varchar) as title,
                cast(null as varchar) as text
            limit 0
        ) as team_columns
        union all by name
        select * from {{ read }}
        where {{ dt_filter }}
    )

    {%- if repeated is none %}
    {{ latest_copies('(select landed.* exclude (filename) from landed)') }}
    {%- else %}
    select landed.* exclude (filename), 1 as copy_rank
    from landed
    {%- if repeated %}
    where landed.filename not in ({{ sql_string_values(repeated) }})

    union all

    {{ latest_copies(
        '(select landed.* exclude (filename) from landed where landed.filename in (' ~ sql_string_values(repeated) ~ '))'
    ) }}
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{% macro sql_string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{% macro sql_string_values(values) -%}
    {%- for v in values %}{{ sql_string_literal(v) }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{% macro sql_string_list(values) -%}
    [{{ sql_string_values(values) }}]
{%- endmacro %}
