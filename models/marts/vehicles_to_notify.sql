{{ config(materialized='view') }}
-- A view, so it is current whenever the notifier reads it: recording a notification
-- removes the row at once, without a dbt run.
with

vehicle_availability as (
    select * from {{ ref('vehicle_availability') }}
),

recipients as (
    select * from {{ ref('stg_notifier__recipients') }}
),

notifications as (
    select * from {{ ref('stg_notifier__notifications') }}
),

open_windows as (
    select *
    from vehicle_availability
    where is_available
),

-- A car whose earlier stay ended is back, not new: when it last left. A lookup per
-- open window on the (vehicle_id, available_since) index, not a window function
-- over the whole history, so reading this view stays cheap as the history grows.
-- The table itself, not the import CTE: a CTE read twice is materialized, and the
-- lookup would scan all of it once per open window.
open_windows_with_previous_stay as (
    select
        open_windows.*,
        previous_stay.left_at
    from open_windows
    left join lateral (
        select max(earlier.available_until) as left_at
        from {{ ref('vehicle_availability') }} as earlier
        where
            earlier.vehicle_id = open_windows.vehicle_id
            and earlier.available_since < open_windows.available_since
    ) as previous_stay on true
),

recipient_windows as (
    select
        recipients.recipient,
        open_windows_with_previous_stay.*
    from recipients
    cross join open_windows_with_previous_stay
),

final as (
    select
        recipient_windows.*,
        case
            when recipient_windows.left_at is null then 'new' else 'back'
        end as alert_kind
    from recipient_windows
    left join notifications
        on
            recipient_windows.vehicle_id = notifications.vehicle_id
            and recipient_windows.available_since = notifications.available_since
            and recipient_windows.recipient = notifications.recipient
    where notifications.recipient is null
)

select * from final
