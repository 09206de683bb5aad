-- Gaps and islands over the vehicle snapshot: versions that follow each other without
-- a gap (one ends exactly when the next starts: a price or detail change), or with a
-- gap shorter than the grace period (macro availability_grace: the car was missing
-- from a load or two, then back), are one availability window; a longer gap (the car
-- left the showroom) starts a new window. A window whose last version ended stays
-- open until the car has been missing for the grace period, judged by the latest
-- load's clock, so a single absent load neither closes it nor makes news later.
-- Every window function is partitioned by vehicle_id and every step keeps all
-- columns (no self-join), so a filter on vehicle_id from a reader (the incremental
-- mart) is pushed down to the snapshot's index instead of grouping all history.
with

vehicle_versions as (
    select * from {{ ref('snap_vehicles') }}
),

latest_load as (
    select * from {{ ref('int_latest_load') }}
),

versions_ordered as (
    select
        *,
        lag(dbt_valid_to) over (
            partition by vehicle_id
            order by dbt_valid_from, dbt_valid_to nulls last
        ) as previous_valid_to
    from vehicle_versions
),

versions_numbered as (
    select
        *,
        -- a running count of window starts numbers the windows 1, 2, ...
        count(*) filter (
            where
            previous_valid_to is null
            or (
                dbt_valid_from > previous_valid_to
                and dbt_valid_from - previous_valid_to
                >= {{ availability_grace() }}
            )
        ) over (
            partition by vehicle_id
            order by dbt_valid_from, dbt_valid_to nulls last
            rows between unbounded preceding and current row
        ) as window_number
    from versions_ordered
),

versions_grouped as (
    select
        *,
        min(dbt_valid_from) over availability_window as available_since,
        -- the window is open while any of its versions is, or the car has been
        -- gone for less than the grace period; else it ends with its last version
        case
            when
                count(*) over availability_window
                = count(dbt_valid_to) over availability_window
                and max(dbt_valid_to) over availability_window
                <= (select latest_load.loaded_at from latest_load)
                - {{ availability_grace() }}
                then max(dbt_valid_to) over availability_window
        end as available_until,
        row_number() over (
            partition by vehicle_id, window_number
            order by dbt_valid_from desc, dbt_valid_to desc nulls first
        ) = 1 as is_latest_version_in_window
    from versions_numbered
    window availability_window as (partition by vehicle_id, window_number)
)

select * from versions_grouped
