{#- The rows of `relation` (a CTE of landed envelope rows) keeping, per record
    (source, record_type, record_id), only the copy read last: latest extracted_at, then
    the latest run_id. Overlapping extraction windows land the same record twice. -#}
{% macro latest_copies(relation) -%}
    {{ return(adapter.dispatch('latest_copies')(relation)) }}
{%- endmacro %}

{% macro default__latest_copies(relation) -%}
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

{#- DuckDB: most records land once, so rank only the copies of keys that occur more than
    once. Counting a 64-bit hash of the key is far cheaper than sorting every row by three
    strings under the memory cap (10 M events: 30 s CPU instead of 40 s, copying alone 16 s);
    a hash collision only sends a few more rows through the ranking, which uses the key
    itself. The output has the same columns as the default (copy_rank included). -#}
{% macro duckdb__latest_copies(relation) -%}
    with

    keyed as (
        select
            copies.*,
            hash(copies.source, copies.record_type, copies.record_id) as key_hash
        from {{ relation }} as copies
    ),

    repeated as (
        select keyed.key_hash
        from keyed
        group by keyed.key_hash
        having count(*) > 1
    )

    select keyed.* exclude (key_hash), 1 as copy_rank
    from keyed
    anti join repeated on keyed.key_hash = repeated.key_hash

    union all

    {{ default__latest_copies(
        '(select keyed.* exclude (key_hash) from keyed semi join repeated on keyed.key_hash = repeated.key_hash)'
    ) }}
{%- endmacro %}
