{#-
    Fails with one row per key that has more than one row with an open end (`ends_at`
    null): a vehicle can be in the showroom only once at a time.
-#}
{% test at_most_one_open_window(model, partition_by, ends_at) %}

    select
        {{ partition_by | join(', ') }},
        count(*) as open_windows
    from {{ model }}
    where {{ ends_at }} is null
    group by {{ partition_by | join(', ') }}
    having count(*) > 1

{% endtest %}
