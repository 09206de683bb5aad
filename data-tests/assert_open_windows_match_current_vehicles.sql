-- The incremental mart and the snapshot must agree on what is in the showroom: a
-- vehicle has an open availability window exactly when it has a current snapshot
-- row, or its last row ended less than the grace period (macro availability_grace)
-- before the latest load (a car missing from a load or two keeps its window). Fails
-- with each vehicle where they disagree (and on which side).
with

vehicle_availability as (
    select * from {{ ref('vehicle_availability') }}
),

vehicle_versions as (
    select * from {{ ref('snap_vehicles') }}
),

latest_load as (
    select * from {{ ref('int_latest_load') }}
),

open_windows as (
    select vehicle_id
    from vehicle_availability
    where is_available
),

current_versions as (
    select distinct vehicle_id
    from vehicle_versions
    where
        dbt_valid_to is null
        or dbt_valid_to
        > (select latest_load.loaded_at from latest_load) - {{ availability_grace() }}
),

final as (
    select
        coalesce(open_windows.vehicle_id, current_versions.vehicle_id) as vehicle_id,
        open_windows.vehicle_id is not null as has_open_window,
        current_versions.vehicle_id is not null as has_current_version
    from open_windows
    full outer join current_versions
        on open_windows.vehicle_id = current_versions.vehicle_id
    where open_windows.vehicle_id is null or current_versions.vehicle_id is null
)

select * from final
