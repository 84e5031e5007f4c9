{#- Incremental strategy `replace_where`: delete the rows of the model's table that match
    every one of `incremental_predicates` (SQL over the table's own columns), then insert
    the rows the model selected. For models that recompute a set of rows described by a
    condition ("threads still open or opened in the window") rather than by keys: the
    delete filters on cheap columns instead of probing the whole table with every key of
    the new rows (delete+insert). The model must select every row the condition matches
    (recomputed), and only rows the condition would match or new rows. `{this}` in a
    predicate stands for the table (see macro lookback_start). -#}
{% macro get_incremental_replace_where_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set predicates = arg_dict['incremental_predicates'] -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy replace_where needs incremental_predicates (" ~ target ~ ")") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where
    {%- for predicate in predicates %}
        ({{ predicate | replace('{this}', target | string) }}){{ " and" if not loop.last }}
    {%- endfor %};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}
