{#-
    The clock of the raw data: the `extracted_at` of the load now in `raw` (every row
    of one loader run carries the same value; a source test checks that). Falls back
    to now() only when all raw tables are empty (the showroom emptied), so that the
    snapshots can still close the rows that left.
-#}
{% macro raw_extracted_at() -%}
    (
        select coalesce(max(loads.extracted_at), now())
        from (
            select max(extracted_at) as extracted_at
            from {{ source('athlon', 'vehicle_clusters') }}
            union all
            select max(extracted_at) as extracted_at
            from {{ source('athlon', 'vehicles') }}
            union all
            select max(extracted_at) as extracted_at
            from {{ source('athlon', 'vehicles__options') }}
        ) as loads
    )
{%- endmacro %}
