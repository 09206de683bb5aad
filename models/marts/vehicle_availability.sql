{{
    config(
        materialized='incremental',
        unique_key='availability_id',
        incremental_strategy='merge',
        on_schema_change='fail',
        indexes=[
            {'columns': ['availability_id'], 'unique': true},
            {'columns': ['vehicle_id', 'available_since'], 'unique': true},
        ],
    )
}}
{#-
    Incremental: a run rebuilds the windows of the vehicles whose snapshot history
    changed since the last run (a version started or ended after the latest
    timestamp this table holds, less the grace period: see vehicles_changed) and
    merges them on availability_id. A window's key
    never changes (vehicle and start), windows are never deleted, so merging the
    recomputed windows of those vehicles gives the same table as a full rebuild.
    `dbt build --full-refresh` rebuilds it from the whole history.
-#}
-- depends_on: {{ ref('int_vehicle_history_changes') }}

with

availability_windows as (
    select * from {{ ref('int_vehicle_availability_windows') }}
),

cluster_latest_versions as (
    select * from {{ ref('int_vehicle_clusters_latest_version') }}
),

fuel_types as (
    select * from {{ ref('fuel_types') }}
),

{% if is_incremental() %}

    history_changes as (
        select * from {{ ref('int_vehicle_history_changes') }}
    ),

    processed as (
        select
            coalesce(
                max(greatest(available_since, available_until)),
                '-infinity'::timestamptz
            ) as processed_until
        from {{ this }}
    ),

    -- Looking back one grace period further: a car that left less than that
    -- before the last run kept its window open, and this run may have to close it
    -- although its history did not change since.
    vehicles_changed as (
        select distinct history_changes.vehicle_id
        from history_changes
        where
            history_changes.changed_at
            > (select processed.processed_until from processed)
            - {{ availability_grace() }}
    ),

{% endif %}

windows_to_build as (
    select *
    from availability_windows
    {% if is_incremental() %}
        -- = any(array(...)), not in (...): a filter on a value PostgreSQL pushes
        -- down through the window functions to the snapshot's index, where a
        -- semi-join would first group every vehicle's whole history.
        where
            vehicle_id = any(
                array(
                    select vehicles_changed.vehicle_id  -- noqa: RF03
                    from vehicles_changed
                )
            )
    {% endif %}
),

final as (
    select
        {{ availability_id(
            'windows_to_build.vehicle_id', 'windows_to_build.available_since'
        ) }} as availability_id,
        windows_to_build.vehicle_id,
        windows_to_build.make,
        windows_to_build.model,
        windows_to_build.type,
        windows_to_build.model_year,
        windows_to_build.color,
        windows_to_build.official_color,
        windows_to_build.body_type,
        fuel_types.fuel_type,
        windows_to_build.is_electric,
        windows_to_build.range_in_km,
        windows_to_build.transmission_type,
        windows_to_build.license_plate,
        windows_to_build.emission,
        windows_to_build.registered_mileage,
        windows_to_build.fiscal_value_in_euro,
        windows_to_build.price_per_month_in_euro,
        windows_to_build.contribution_in_euro,
        windows_to_build.net_cost_per_month_in_euro,
        windows_to_build.showroom_uri,
        windows_to_build.image_uri,
        cluster_latest_versions.showroom_uri as cluster_showroom_uri,
        windows_to_build.available_since,
        windows_to_build.available_until,
        windows_to_build.available_until is null as is_available
    from windows_to_build
    left join cluster_latest_versions
        on
            windows_to_build.make = cluster_latest_versions.make
            and windows_to_build.model = cluster_latest_versions.model
    left join fuel_types
        on windows_to_build.external_fuel_type_id = fuel_types.external_fuel_type_id
)

select * from final
