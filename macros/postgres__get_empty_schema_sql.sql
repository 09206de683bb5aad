{#-
    dbt's contract check casts null to each declared type to learn the contract's
    columns. Its default also warns, at every build of every contracted model, that a
    bare `numeric` "can lead to unintended rounding": true where numeric means
    NUMBER(38,0), not in PostgreSQL, whose numeric without precision keeps every
    digit. Same query, without that warning; a column without a type still fails.
-#}
{% macro postgres__get_empty_schema_sql(columns) %}
    {%- set untyped = [] -%}
    {%- for column in columns.values() if column.get('data_type') is none -%}
        {%- do untyped.append(column['name']) -%}
    {%- endfor -%}
    {%- if untyped -%}
        {{ exceptions.column_type_missing(column_names=untyped) }}
    {%- endif -%}
    select
    {%- for column in columns.values() %}
        {%- set name = column['name'] %}
        {{ cast('null', column['data_type']) }} as
        {{- ' ' ~ (adapter.quote(name) if column.get('quote') else name) }}
        {{- ',' if not loop.last }}
    {%- endfor %}
{% endmacro %}
