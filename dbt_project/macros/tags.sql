{#- Tags are `prefix:value` strings computed at the edge (e.g. `event:acted`, `kpi:nps`).
    A correlated unnest runs unchanged on DuckDB and PostgreSQL; Spark has no unnest in a
    subquery and uses its array functions instead (spark__ variants). -#}

{#- The value of the first tag starting with `prefix:` (tags sorted at the edge), or null. -#}
{% macro tag_value(tags, prefix) -%}
    {{ return(adapter.dispatch('tag_value')(tags, prefix)) }}
{%- endmacro %}

{% macro default__tag_value(tags, prefix) -%}
    (
        select min(substr(tag_values.tag, {{ prefix | length + 2 }}))
        from unnest({{ tags }}) as tag_values (tag)
        where tag_values.tag like '{{ prefix }}:%'
    )
{%- endmacro %}

{#- Comma-separated tags: with `prefix`, the values of the tags that have it; with
    `exclude_prefix`, every tag except those that have it. -#}
{% macro tags_joined(tags, prefix=none, exclude_prefix=none) -%}
    {{ return(adapter.dispatch('tags_joined')(tags, prefix, exclude_prefix)) }}
{%- endmacro %}

{% macro default__tags_joined(tags, prefix=none, exclude_prefix=none) -%}
    (
        select
            {%- if prefix %}
            string_agg(substr(joined_tags.tag, {{ prefix | length + 2 }}), ',' order by joined_tags.tag)
            {%- else %}
            string_agg(joined_tags.tag, ',' order by joined_tags.tag)
            {%- endif %}
        from unnest({{ tags }}) as joined_tags (tag)
        where
            {%- if prefix %} joined_tags.tag like '{{ prefix }}:%'
            {%- elif exclude_prefix %} joined_tags.tag not like '{{ exclude_prefix }}:%'
            {%- else %} true
            {%- endif %}
    )
{%- endmacro %}

{% macro spark__tag_value(tags, prefix) -%}
    substr(array_min(filter({{ tags }}, tag -> tag like '{{ prefix }}:%')), {{ prefix | length + 2 }})
{%- endmacro %}

{#- Null, like string_agg over no rows, when no tag matches. -#}
{% macro spark__tags_joined(tags, prefix=none, exclude_prefix=none) -%}
    {%- if prefix -%}
        {%- set matching = "transform(filter(" ~ tags ~ ", tag -> tag like '" ~ prefix ~ ":%'), tag -> substr(tag, "
            ~ (prefix | length + 2) ~ "))" -%}
    {%- elif exclude_prefix -%}
        {%- set matching = "filter(" ~ tags ~ ", tag -> tag not like '" ~ exclude_prefix ~ ":%')" -%}
    {%- else -%}
        {%- set matching = tags -%}
    {%- endif -%}
    case when size({{ matching }}) > 0 then array_join(array_sort({{ matching }}), ',') end
{%- endmacro %}
