with

source as (
    select * from {{ source('athlon', 'vehicles') }}
),

renamed as (
    select
        -- identity and showroom links
        cast(id as text) as vehicle_id,
        cast(make as text) as make,
        cast(model as text) as model,
        cast(type as text) as type,
        cast(model_year as integer) as model_year,
        cast(external_type_id as text) as external_type_id,
        cast(external_fuel_type_id as integer) as external_fuel_type_id,
        cast(is_electric as boolean) as is_electric,
        cast(range_in_km as integer) as range_in_km,
        cast(paint_id as text) as paint_id,
        cast(external_paint_id as text) as external_paint_id,
        cast(uri as text) as showroom_uri,
        cast(image_uri as text) as image_uri,

        -- summary (VehicleVariation) figures
        cast(price_in_euro_per_month as numeric) as summary_price_per_month_in_euro,
        cast(fiscal_value_in_euro as numeric) as summary_fiscal_value_in_euro,
        cast(addition_percentage as numeric) as summary_addition_percentage,

        -- details
        cast(details__license_plate as text) as license_plate,
        cast(details__color as text) as color,
        cast(details__official_color as text) as official_color,
        cast(details__body_type as text) as body_type,
        cast(details__emission as numeric) as emission,
        cast(details__registration_date as timestamptz) as registered_at,
        cast(details__registered_mileage as numeric) as registered_mileage,
        cast(details__transmission_type as text) as transmission_type,
        cast(details__avg_fuel_consumption as numeric) as avg_fuel_consumption,
        cast(details__type_spare_wheel as text) as type_spare_wheel,
        cast(details__addition_percentage as numeric) as addition_percentage,

        -- pricing
        cast(pricing__fiscal_value_in_euro as numeric) as fiscal_value_in_euro,
        cast(
            pricing__base_price_per_month_in_euro as numeric
        ) as base_price_per_month_in_euro,
        cast(
            pricing__calculated_price_per_month_in_euro as numeric
        ) as calculated_price_per_month_in_euro,
        cast(pricing__price_per_km as numeric) as price_per_km_in_euro,
        cast(pricing__fuel_price_per_km as numeric) as fuel_price_per_km_in_euro,
        cast(pricing__contribution_in_euro as numeric) as contribution_in_euro,
        cast(
            pricing__expected_fuel_cost_per_month_in_euro as numeric
        ) as expected_fuel_cost_per_month_in_euro,
        cast(
            pricing__net_cost_per_month_in_euro as numeric
        ) as net_cost_per_month_in_euro,

        cast(extracted_at as timestamptz) as extracted_at
    from source
)

select * from renamed
