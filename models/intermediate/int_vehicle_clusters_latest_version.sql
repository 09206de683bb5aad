-- One row per cluster (make + model) ever seen: its latest snapshot version, current
-- or not, so a vehicle whose cluster has left still finds its cluster's page.
with

cluster_versions as (
    select * from {{ ref('snap_vehicle_clusters') }}
),

final as (
    select distinct on (make, model)
        make,
        model,
        external_fuel_type_id,
        showroom_uri,
        dbt_valid_from as version_since,
        dbt_valid_to as version_until,
        dbt_valid_to is null as is_current
    from cluster_versions
    order by make asc, model asc, dbt_valid_from desc
)

select * from final
