{{ config(materialized='ephemeral') }}
-- Ephemeral (inlined where used), unlike the other staging models: as a view it
-- would be rebuilt every run, and dbt drops a view with CASCADE when it rebuilds it,
-- taking marts.vehicles_to_notify with it until that is rebuilt at the end of the run
-- (and for good, should the run fail in between). Inlined, the notifier's view depends
-- only on tables.
with

source as (
    select * from {{ source('notifier', 'recipients') }}
),

renamed as (
    select
        cast(recipient as text) as recipient,
        cast(registered_at as timestamptz) as registered_at
    from source
)

select * from renamed
