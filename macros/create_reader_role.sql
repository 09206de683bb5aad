{#-
    The read-only role of the marts, created once per server (roles are global to a
    PostgreSQL cluster). NOLOGIN: people log in as their own role and are granted
    `reader`. Catching duplicate_object/unique_violation makes it idempotent even when
    two databases of one server build at the same time.
-#}
{% macro create_reader_role() %}
    do $$
    begin
        if not exists (
            select from pg_catalog.pg_roles where rolname = 'reader'
        ) then
            create role reader nologin;
        end if;
    exception
        when duplicate_object or unique_violation then null;
    end
    $$;
{% endmacro %}
