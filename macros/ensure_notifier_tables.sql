{#-
    `dbt run-operation ensure_notifier_tables`: runs create_notifier_tables' SQL
    outside a build. A run-operation only renders a macro; this one executes it.
    The migration from the older tool writes notifications before any build ran.
-#}
{% macro ensure_notifier_tables() %}
    {% do run_query(create_notifier_tables()) %}
{% endmacro %}
