{#-
    Column test on a window's start: fails with each row whose end (`ends_at`) lies
    before its start. An open window (end null) passes.
-#}
{% test ends_not_before_start(model, column_name, ends_at) %}

    select *
    from {{ model }}
    where {{ ends_at }} < {{ column_name }}

{% endtest %}
