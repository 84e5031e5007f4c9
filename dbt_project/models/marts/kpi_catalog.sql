-- Every KPI Agora publishes, what it means, and the community's target for it
-- (agora.yml `kpis.targets`, passed in as AGORA_KPI_TARGETS).
{%- set raw_targets = var('kpi_targets', env_var('AGORA_KPI_TARGETS', '{}')) %}
{%- set targets = fromjson(raw_targets) if raw_targets is string else raw_targets %}

with

definitions as (
    select * from {{ ref('kpi_definitions') }}
),

targets as (
    {%- for kpi, target in (targets or {}).items() %}
    select
        '{{ kpi | replace("'", "''") }}' as kpi,
        cast({{ target | float }} as {{ type_double() }}) as target
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
        select
            cast(null as {{ type_varchar() }}) as kpi,
            cast(null as {{ type_double() }}) as target
        where false
    {%- endfor %}
),

final as (
    select
        cast(definitions.kpi as {{ type_varchar() }}) as kpi,
        cast(definitions.kind as {{ type_varchar() }}) as kind,
        cast(definitions.nature as {{ type_varchar() }}) as nature,
        cast(definitions.definition as {{ type_varchar() }}) as definition,
        cast(definitions.unit as {{ type_varchar() }}) as unit,
        cast(definitions.direction as {{ type_varchar() }}) as direction,
        cast(targets.target as {{ type_double() }}) as target,
        cast(definitions.mart as {{ type_varchar() }}) as mart,
        cast(definitions.origin as {{ type_varchar() }}) as origin,
        -- exact here; the differential-privacy release marks its KPIs `dp` or `withheld`.
        cast('exact' as {{ type_varchar() }}) as release  -- noqa: RF04
    from definitions
    left join targets
        on definitions.kpi = targets.kpi
)

select * from final
