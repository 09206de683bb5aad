-- How fast cars go: per make and model, how long the cars that left the showroom in
-- the last 90 days (as of the latest load) had been available: median and 90th
-- percentile, in hours. "Cars like this are usually leased within 3 h."
with

availability as (
    select * from {{ ref('vehicle_availability') }}
),

latest_load as (
    select * from {{ ref('int_latest_load') }}
),

recent_stays as (
    select
        availability.make,
        availability.model,
        extract(
            epoch from availability.available_until - availability.available_since
        ) / 3600.0 as hours_available
    from availability
    cross join latest_load
    where
        availability.available_until is not null
        and availability.available_until
        > latest_load.loaded_at - interval '{{ var("lease_speed_days", 90) }} days'
),

final as (
    select
        make,
        model,
        count(*) as leased_count,
        round(
            (percentile_cont(0.5) within group (order by hours_available))::numeric,
            1
        ) as median_hours_available,
        round(
            (percentile_cont(0.9) within group (order by hours_available))::numeric,
            1
        ) as p90_hours_available
    from recent_stays
    group by make, model
)

select * from final
