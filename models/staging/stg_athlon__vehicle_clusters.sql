with

source as (
    select * from {{ source('athlon', 'vehicle_clusters') }}
),

renamed as (
    select
        cast(make as text) as make,
        cast(model as text) as model,
        cast(external_type_id as text) as external_type_id,
        cast(external_fuel_type_id as integer) as external_fuel_type_id,
        cast(uri as text) as showroom_uri,
        cast(first_vehicle_id as text) as first_vehicle_id,
        cast(vehicle_count as integer) as vehicle_count,
        cast(min_price_in_euro_per_month as numeric) as min_price_per_month_in_euro,
        cast(fiscal_value_in_euro as numeric) as fiscal_value_in_euro,
        cast(addition_percentage as numeric) as addition_percentage,
        cast(latest_model_year as integer) as latest_model_year,
        cast(max_co2_emission as integer) as max_co2_emission,
        cast(image_uri as text) as image_uri,
        cast(extracted_at as timestamptz) as extracted_at
    from source
)

select * from renamed
