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

recipient_windows as (
    select
        recipients.recipient,
        open_windows.*
    from recipients
    cross join open_windows
),

final as (
    select recipient_windows.*
    from recipient_windows
    left join notifications
        on
            recipient_windows.vehicle_id = notifications.vehicle_id
            and recipient_windows.available_since = notifications.available_since
            and recipient_windows.recipient = notifications.recipient
    where notifications.recipient is null
)

select * from final
