{#- What Apache Spark (dbt-spark) needs to run the same models: type names, reading the
    landing zone in place, and the two incremental strategies the models use, on plain
    Parquet tables (no Delta or Iceberg: no MERGE, no DELETE). -#}

{#- Enforced contracts check a mart's declared `data_type` through dbt.cast(): the names
    macro types.sql maps, mapped here too, so the marts' YAML stays one for every engine. -#}
{% macro spark__cast(field, type) -%}
    {%- set spark_types = {'varchar': type_varchar(), 'double precision': type_double()} -%}
    cast({{ field }} as {{ spark_types.get(type | lower | trim, type) }})
{%- endmacro %}

{#- Landing timestamps as naive UTC. Spark's session time zone is UTC (profiles.yml), so a
    Parquet UTC instant already reads as the UTC wall time. -#}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
    cast({{ column }} at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro spark__utc_timestamp(column) -%}
    cast({{ column }} as timestamp)
{%- endmacro %}

{#- Spark reads the landing Parquet files in place, like DuckDB: a temporary view over
    `<landing>/*/dt=*/*.parquet` (an `s3a://` root on a cluster) declared with the landing
    envelope's schema (agora/envelope.py, team text columns included), so no file footer is
    read to infer or merge schemas and files without title/text read them as null. `since`
    filters on occurred_at, whose UTC day is the `dt` partition: Parquet row-group
    statistics skip older data. -#}
{% macro spark__latest_landed_copies(relation, since=none) -%}
    {%- set root = var('landing_root', env_var('AGORA_LANDING_ROOT', 'data/landing')) -%}
    {%- if execute -%}
        {%- do run_query(
            "create or replace temporary view agora_landing_files ("
            ~ "source string, platform string, record_type string, record_id string, thread_id string,"
            ~ " parent_id string, actor string, parent_actor string, occurred_at timestamp, is_bot boolean,"
            ~ " is_staff boolean, value double, tags array<string>, extracted_at timestamp, run_id string,"
            ~ " connector_version string, title string, text string"
            ~ ") using parquet options (path '" ~ root | replace("'", "\\'") ~ "/*/dt=*/*.parquet')"
        ) -%}
    {%- endif -%}
    {%- set scan -%}
        (
            select landed.* from agora_landing_files as landed
            {%- if since %}
            where cast(landed.occurred_at as date) >= cast('{{ since }}' as date)
            {%- endif %}
        )
    {%- endset -%}
    {{ latest_copies(scan) }}
{%- endmacro %}

{#- Incremental strategies on plain Parquet tables. Spark cannot delete rows from them,
    so `delete+insert` (keys) and `replace_where` (predicates, macro replace_where) keep
    their meaning as a copy-on-write: the table's rows the strategy would keep, plus the
    new rows, are written to a side table, which then overwrites the model's table (Spark
    refuses to overwrite a table a query is still reading) and is dropped. Each daily run
    rewrites the model's table twice: cheap next to reading the history again. Overriding these two
    dbt-spark macros (the project's macros take precedence over the adapter's) is how its
    incremental materialization learns the project's strategies. -#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {%- if raw_strategy in ('delete+insert', 'replace_where') -%}
        {{ return(raw_strategy) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{%- endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {%- if strategy not in ('delete+insert', 'replace_where') -%}
        {{ return(dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates)) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- if strategy == 'delete+insert' -%}
        {%- set keys = [unique_key] if unique_key is string else unique_key -%}
        {%- set kept -%}
            select {{ columns }} from {{ target }} as kept
            where not exists (
                select 1 from {{ source }} as replacing
                where {% for key in keys %}replacing.{{ key }} = kept.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
            )
        {%- endset -%}
    {%- else -%}
        {%- if not incremental_predicates -%}
            {{ exceptions.raise_compiler_error(
                "incremental_strategy replace_where needs incremental_predicates (" ~ target ~ ")") }}
        {%- endif -%}
        {%- set kept -%}
            select {{ columns }} from {{ target }}
            where not coalesce(
                {%- for predicate in incremental_predicates %}
                ({{ predicate | replace('{this}', target | string) }}){{ ' and' if not loop.last }}
                {%- endfor %}, false)
        {%- endset -%}
    {%- endif -%}
    {%- set next = target.incorporate(path={'identifier': target.identifier ~ '__dbt_next'}) -%}
    {%- do run_query('drop table if exists ' ~ next) -%}
    {%- do run_query(
        'create table ' ~ next ~ ' using parquet as ' ~ kept
        ~ ' union all select ' ~ columns ~ ' from ' ~ source
    ) -%}
    {%- do run_query('insert overwrite table ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ next) -%}
    {#- The materialization's main statement: the side table's files go at once. -#}
    {{ return('drop table ' ~ next) }}
{%- endmacro %}

{#- Seeds on Spark, with the values written as SQL literals: dbt-spark's session method
    quotes seed values without escaping them ('the month's ...' breaks the statement) and
    turns empty cells into the string 'None'. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set value = row[loop.index0] -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- if value is none -%}
                        cast(null as {{ type }})
                    {%- elif value is number -%}
                        cast({{ value }} as {{ type }})
                    {%- else -%}
                        cast('{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ type }})
                    {%- endif -%}
                    {{ ", " if not loop.last }}
                {%- endfor -%}){{ "," if not loop.last }}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}
