-- One row: when the latest load ran (its extracted_at), the clock that the grace
-- period, the open-window check and the lease-speed period count from. now() only
-- while raw is empty, as the snapshots' clock does.
with

vehicles as (
    select * from {{ ref('stg_athlon__vehicles') }}
),

final as (
    select coalesce(max(extracted_at), now()) as loaded_at
    from vehicles
)

select * from final
