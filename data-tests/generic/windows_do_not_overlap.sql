{#-
    Fails with each row whose window [starts_at, ends_at) overlaps the next window of
    the same key (ends_at null = still open). Touching windows (one ends when the
    next starts) are fine for snapshot versions; `allow_touching=false` also rejects
    them, for availability windows that should have been merged into one.
-#}
{% test windows_do_not_overlap(
    model, partition_by, starts_at, ends_at, allow_touching=true
) %}

    with

    windows as (
        select
            {{ partition_by | join(', ') }},
            {{ starts_at }} as starts_at,
            {{ ends_at }} as ends_at,
            lead({{ starts_at }}) over (
                partition by {{ partition_by | join(', ') }}
                order by {{ starts_at }}, {{ ends_at }} nulls last
            ) as next_starts_at
        from {{ model }}
    )

    select *
    from windows
    where
        next_starts_at is not null
        and (
            ends_at is null
            or ends_at > next_starts_at
            {% if not allow_touching %}
                or ends_at = next_starts_at
            {% endif %}
        )

{% endtest %}
