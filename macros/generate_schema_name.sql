{#-
    Use a node's custom schema verbatim (`staging`, `snapshots`, `marts`) instead of
    dbt's default `<target schema>_<custom schema>`: the schema names are a contract
    (docs/architecture.md) that the notifier and the reader role rely on.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
