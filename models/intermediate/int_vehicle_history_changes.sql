-- Every moment a vehicle's history changed: a version started or ended. The
-- incremental vehicle_availability rebuilds only the vehicles changed since its last
-- run; plain columns (no window functions) let PostgreSQL use the snapshot's indexes
-- on dbt_valid_from and dbt_valid_to for that filter.
with

vehicle_versions as not materialized (
    select * from {{ ref('snap_vehicles') }}
),

versions_started as (
    select
        vehicle_id,
        dbt_valid_from as changed_at
    from vehicle_versions
),

versions_ended as (
    select
        vehicle_id,
        dbt_valid_to as changed_at
    from vehicle_versions
    where dbt_valid_to is not null
),

final as (
    select * from versions_started
    union all
    select * from versions_ended
)

select * from final
