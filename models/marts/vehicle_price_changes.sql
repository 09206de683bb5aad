-- One row per price change of a car during its stay in the showroom, with what a
-- person reads ("now € 489, was € 539") and the window it belongs to.
with

price_changes as (
    select * from {{ ref('int_vehicle_price_changes') }}
),

availability as (
    select * from {{ ref('vehicle_availability') }}
),

final as (
    select
        price_changes.price_change_id,
        price_changes.availability_id,
        price_changes.vehicle_id,
        availability.make,
        availability.model,
        availability.type,
        availability.license_plate,
        price_changes.changed_at,
        price_changes.previous_price_per_month_in_euro,
        price_changes.price_per_month_in_euro,
        price_changes.change_in_euro,
        price_changes.change_percent,
        price_changes.is_drop,
        availability.is_available
    from price_changes
    inner join availability
        on price_changes.availability_id = availability.availability_id
)

select * from final
