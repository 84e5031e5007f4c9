{#- The rows of `relation` (a CTE name or a parenthesised query of landed envelope rows)
    keeping, per record (source, record_type, record_id), only the copy read last: latest
    extracted_at, then the latest run_id. Overlapping extraction windows land the same
    record twice. The output keeps the input's columns plus `copy_rank` (always 1). -#}
{% macro latest_copies(relation) -%}
    select ranked.* from (
        select
            copies.*,
            row_number() over (
                partition by copies.source, copies.record_type, copies.record_id
                order by copies.extracted_at desc, copies.run_id desc
            ) as copy_rank
        from {{ relation }} as copies
    ) as ranked
    where ranked.copy_rank = 1
{%- endmacro %}
