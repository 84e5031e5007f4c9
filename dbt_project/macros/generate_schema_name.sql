{#- Schemas are named by layer (staging, intermediate, marts), not `<target>_<layer>`:
    publishing copies schema `marts` by that exact name. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
