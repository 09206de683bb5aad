-- One row per change of a vehicle's monthly price inside one availability window:
-- the version that carries the new price, with the price before it. A car that
-- leaves and comes back at another price starts a new window, which is news of its
-- own (back again), not a price change.
with

vehicle_versions as (
    select * from {{ ref('int_vehicle_versions_grouped') }}
),

versions_priced as (
    select
        vehicle_id,
        window_number,
        available_since,
        dbt_valid_from,
        coalesce(
            calculated_price_per_month_in_euro, summary_price_per_month_in_euro
        ) as price_per_month_in_euro
    from vehicle_versions
),

versions_with_previous as (
    select
        *,
        lag(price_per_month_in_euro) over (
            partition by vehicle_id, window_number
            order by dbt_valid_from
        ) as previous_price_per_month_in_euro
    from versions_priced
),

final as (
    select
        {{ availability_id('vehicle_id', 'dbt_valid_from') }} as price_change_id,
        {{ availability_id('vehicle_id', 'available_since') }} as availability_id,
        vehicle_id,
        available_since,
        dbt_valid_from as changed_at,
        previous_price_per_month_in_euro,
        price_per_month_in_euro,
        price_per_month_in_euro
        - previous_price_per_month_in_euro as change_in_euro,
        round(
            100 * (price_per_month_in_euro - previous_price_per_month_in_euro)
            / nullif(previous_price_per_month_in_euro, 0),
            2
        ) as change_percent,
        price_per_month_in_euro
        < previous_price_per_month_in_euro as is_drop
    from versions_with_previous
    where
        previous_price_per_month_in_euro is not null
        and price_per_month_in_euro is not null
        and price_per_month_in_euro <> previous_price_per_month_in_euro
)

select * from final
