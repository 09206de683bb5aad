{#-
    The `grants:` config of the marts gives the reader role SELECT on each mart; it
    also needs USAGE on the schema. Runs at on-run-end; skipped while `marts` does not
    exist yet (a first build that failed before any mart), so it never hides the real
    error.
-#}
{% macro grant_reader_usage_on_marts() %}
    do $$
    begin
        if exists (select from pg_catalog.pg_namespace where nspname = 'marts') then
            grant usage on schema marts to reader;
        end if;
    end
    $$;
{% endmacro %}
