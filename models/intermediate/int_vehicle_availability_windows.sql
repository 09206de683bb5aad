-- One row per vehicle per availability window, with the attributes of the window's
-- latest version (the price a returning or repriced car has now, not when it came).
with

vehicle_versions as (
    select * from {{ ref('int_vehicle_versions_grouped') }}
),

final as (
    select
        vehicle_id,
        window_number,
        available_since,
        available_until,
        make,
        model,
        type,
        model_year,
        external_fuel_type_id,
        is_electric,
        range_in_km,
        color,
        official_color,
        body_type,
        transmission_type,
        license_plate,
        emission,
        registered_mileage,
        coalesce(
            fiscal_value_in_euro, summary_fiscal_value_in_euro
        ) as fiscal_value_in_euro,
        coalesce(
            calculated_price_per_month_in_euro, summary_price_per_month_in_euro
        ) as price_per_month_in_euro,
        contribution_in_euro,
        net_cost_per_month_in_euro,
        showroom_uri,
        image_uri,
        dbt_valid_from as latest_version_since
    from vehicle_versions
    where is_latest_version_in_window
)

select * from final
