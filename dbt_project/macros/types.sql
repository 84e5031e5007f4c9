{#- Type names for casts. The SQL standard's `double precision` and a length-less `varchar`
    run on DuckDB and PostgreSQL; Spark SQL spells them `double` and `string`. Shares are
    computed in double precision on every engine: a `1.0` literal is a DECIMAL, whose
    division Spark rounds to 6 decimal places. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    {{ return('double precision') }}
{%- endmacro %}

{% macro spark__type_double() -%}
    {{ return('double') }}
{%- endmacro %}

{% macro type_varchar() -%}
    {{ return(adapter.dispatch('type_varchar')()) }}
{%- endmacro %}

{% macro default__type_varchar() -%}
    {{ return('varchar') }}
{%- endmacro %}

{% macro spark__type_varchar() -%}
    {{ return('string') }}
{%- endmacro %}
