{#-
    How long a vehicle may be missing from the showroom and still keep its
    availability window: var `availability_grace_minutes`, which
    transform.runner sets from the setting NOTIFY_GRACE_MINUTES (default 30).
    A car missing from one load (an API hiccup no completeness check can see) and
    back within this is the same stay, not news; one back later is news again.
-#}
{% macro availability_grace() -%}
    (interval '1 minute' * {{ var('availability_grace_minutes') | float }})
{%- endmacro %}
