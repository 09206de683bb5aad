-- How long cars of each make and model stay in the showroom, from the closed
-- availability windows. Compile with `dbt compile --select availability_by_model`
-- and run the SQL in target/compiled/ (analyses are never built).
with

vehicle_availability as (
    select * from {{ ref('vehicle_availability') }}
),

closed_windows as (
    select
        make,
        model,
        available_until - available_since as time_available
    from vehicle_availability
    where not is_available
),

final as (
    select
        make,
        model,
        count(*) as closed_windows,
        min(time_available) as shortest,
        percentile_cont(0.5) within group (
            order by extract(epoch from time_available)
        ) * interval '1 second' as median,
        max(time_available) as longest
    from closed_windows
    group by make, model
)

select * from final
order by make, model
