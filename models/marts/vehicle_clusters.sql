-- The clusters in the showroom now, with the aggregates of the latest load. The
-- aggregates are not part of the cluster's history (they move with every car that
-- comes or goes); the snapshot says since when the cluster is listed.
with

clusters_now as (
    select * from {{ ref('stg_athlon__vehicle_clusters') }}
),

cluster_versions as (
    select * from {{ ref('snap_vehicle_clusters') }}
),

fuel_types as (
    select * from {{ ref('fuel_types') }}
),

cluster_history as (
    select
        make,
        model,
        min(dbt_valid_from) as first_seen_at,
        max(dbt_valid_from) filter (where dbt_valid_to is null) as current_version_since
    from cluster_versions
    group by make, model
),

final as (
    select
        clusters_now.make,
        clusters_now.model,
        fuel_types.fuel_type,
        clusters_now.showroom_uri,
        clusters_now.vehicle_count,
        clusters_now.min_price_per_month_in_euro,
        clusters_now.first_vehicle_id,
        clusters_now.external_type_id,
        clusters_now.latest_model_year,
        clusters_now.max_co2_emission,
        clusters_now.fiscal_value_in_euro,
        clusters_now.addition_percentage,
        clusters_now.image_uri,
        cluster_history.first_seen_at,
        cluster_history.current_version_since,
        clusters_now.extracted_at as aggregates_extracted_at
    from clusters_now
    left join cluster_history
        on
            clusters_now.make = cluster_history.make
            and clusters_now.model = cluster_history.model
    left join fuel_types
        on clusters_now.external_fuel_type_id = fuel_types.external_fuel_type_id
)

select * from final
