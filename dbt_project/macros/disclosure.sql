{#- Disclosure control (design §4): a value describing fewer than k_min accounts or threads
    is published as NULL, flagged, and keeps its group size. Marts read `var('k_min', env_var('AGORA_K_MIN', '5'))`
    themselves and pass it in, so unit tests can override it. -#}

{% macro suppressed_value(value, group_size, k_min) -%}
    case when {{ group_size }} >= {{ k_min | int }} then {{ value }} end
{%- endmacro %}

{% macro is_suppressed(group_size, k_min) -%}
    ({{ group_size }} < {{ k_min | int }})
{%- endmacro %}
