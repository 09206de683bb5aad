{#-
    For a dbt snapshot: fails with one row per unique key that has more than one
    current version (dbt_valid_to null). Two would mean the history forked.
-#}
{% test at_most_one_current_row(model, unique_key, valid_to='dbt_valid_to') %}

    {{ test_at_most_one_open_window(model, partition_by=unique_key, ends_at=valid_to) }}

{% endtest %}
