{#-
    dbt's snapshot clock, overridden (dbt dispatches `snapshot_get_time` to the root
    project first). dbt-postgres's own is `now()::timestamp`: the wall clock at build
    time, without a time zone. The check strategy stamps every new version with it
    (dbt_valid_from, dbt_updated_at) and, with hard_deletes: invalidate, closes the
    rows that left the showroom with it (dbt_valid_to).

    Returning the raw load's extracted_at instead makes every snapshot timestamp the
    moment the showroom was seen (valid_from = the extraction that first showed a
    version, valid_to = the first extraction without it), as timestamptz in UTC, one
    clock for inserts and deletes alike, so a window never ends before it starts. A
    rerun on the same raw data changes nothing.
-#}
{% macro postgres__snapshot_get_time() -%}
    {{ raw_extracted_at() }}
{%- endmacro %}
