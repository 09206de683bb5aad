{#-
    Fails when the column holds more than one distinct value: every row of one load
    must carry the same `extracted_at`, the clock of the snapshots.
-#}
{% test has_single_value(model, column_name) %}

    select count(distinct {{ column_name }}) as distinct_values
    from {{ model }}
    having count(distinct {{ column_name }}) > 1

{% endtest %}
