{#- Tags are `prefix:value` strings computed at the edge (e.g. `event:acted`, `kpi:nps`).
    A correlated unnest runs unchanged on DuckDB and PostgreSQL. -#}

{#- The value of the first tag starting with `prefix:` (tags sorted at the edge), or null. -#}
{% macro tag_value(tags, prefix) -%}
    (
        select min(substr(tag_values.tag, {{ prefix | length + 2 }}))
        from unnest({{ tags }}) as tag_values (tag)
        where tag_values.tag like '{{ prefix }}:%'
    )
{%- endmacro %}

{#- Comma-separated tags: with `prefix`, the values of the tags that have it; with
    `exclude_prefix`, every tag except those that have it. -#}
{% macro tags_joined(tags, prefix=none, exclude_prefix=none) -%}
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
