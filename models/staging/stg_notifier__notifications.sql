{{ config(materialized='ephemeral') }}
-- Ephemeral (inlined where used), unlike the other staging models: as a view it
-- would be rebuilt every run, and dbt drops a view with CASCADE when it rebuilds it,
-- taking marts.vehicles_to_notify with it until that is rebuilt at the end of the run
-- (and for good, should the run fail in between). Inlined, the notifier's view depends
-- only on tables.
with

source as (
    select * from {{ source('notifier', 'notifications') }}
),

renamed as (
    select
        cast(vehicle_id as text) as vehicle_id,
        cast(available_since as timestamptz) as available_since,
        cast(recipient as text) as recipient,
        cast(notified_at as timestamptz) as notified_at
    from source
)

select * from renamed
