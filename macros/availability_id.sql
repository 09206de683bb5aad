{#-
    The key of an availability window: md5 of the vehicle id and the window's start.
    The start is rendered in UTC with microseconds explicitly, so the key does not
    depend on the session's TimeZone setting (a plain ::text cast would).
-#}
{% macro availability_id(vehicle_id, available_since) -%}
    md5(
        {{ vehicle_id }}
        || '|'
        || to_char(
            {{ available_since }} at time zone 'UTC',
            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
        )
    )
{%- endmacro %}
