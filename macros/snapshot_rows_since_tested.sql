{#-
    For relation_tests on a snapshot: the rows its tests need to see, as a subquery:
    every version of each key that a snapshot run changed (a version inserted or
    closed) at or after the raw load of the last build that passed every test.
    transform.runner records that load as a comment on the snapshots' schema; every
    row when there is no record.

    Why this is safe: a row outside passed every test of a build since, and no
    snapshot run has changed it or any row of its key. A failing build records
    nothing, so what it changed stays in until a build passes. A snapshot run only
    writes rows of keys in this load, stamped with its extracted_at: the raw tests,
    which run before it, refuse a null key or extracted_at. The daily full build runs
    each of these tests on its own over every row. Why it matters: the cycle's tests
    cost what the cycle changed, not the whole history (docs/benchmarks.md).
-#}
{% macro snapshot_rows_since_tested(model, rows, unique_key) %}
    {#- The record, or this load's own clock if earlier (a clock set back must not
        stamp a change out of reach). Read when the test compiles and written into
        its SQL as a constant: the planner then knows how few versions are that
        recent and reads the indexes on dbt_valid_from and dbt_valid_to, then the
        key's, instead of the history. -#}
    {%- set record = run_query(
        "select least(tested, " ~ raw_extracted_at() ~ ") from (select"
        ~ " (regexp_match(obj_description(to_regnamespace('" ~ model.schema
        ~ "')::oid, 'pg_namespace'), '^athlon-flex tested through (\\S+)$'))[1]"
        ~ "::timestamptz as tested) as record where tested is not null"
    ) if execute else none -%}
    {%- set since = record and record.rows and record.columns[0].values()[0] -%}
    {%- if not since -%}
        {{ return(rows) }}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set keys = keys | join(', ') -%}
    {%- set since = "'" ~ since.isoformat() ~ "'::timestamptz" -%}
    {{ return(
        "(select * from " ~ rows ~ " where (" ~ keys ~ ") in (select " ~ keys
        ~ " from " ~ model ~ " where dbt_valid_from >= " ~ since ~ " union select "
        ~ keys ~ " from " ~ model ~ " where dbt_valid_to >= " ~ since
        ~ ")) as changed_rows"
    ) }}
{% endmacro %}
