with

source as (
    select * from {{ source('athlon', 'vehicles__options') }}
),

renamed as (
    select
        cast(vehicle_id as text) as vehicle_id,
        cast(id as text) as option_id,
        cast(external_id as text) as external_option_id,
        cast(option_name as text) as option_name,
        cast(included as boolean) as is_included,
        cast(extracted_at as timestamptz) as extracted_at
    from source
)

select * from renamed
