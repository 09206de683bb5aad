{#-
    The notifier's own tables (docs/architecture.md), created if missing before any
    model runs (on-run-start), so `marts.vehicles_to_notify` can always be built and
    the first `dbt build` on an empty database succeeds. dbt never drops or rewrites
    them: they are the notifier's record of what it sent, declared as sources.
-#}
{% macro create_notifier_tables() %}
    create schema if not exists notifier;

    create table if not exists notifier.notifications (
        vehicle_id text not null,
        available_since timestamptz not null,
        recipient text not null,
        notified_at timestamptz not null default now(),
        primary key (vehicle_id, available_since, recipient)
    );

    create table if not exists notifier.recipients (
        recipient text primary key,
        registered_at timestamptz not null default now()
    );
{% endmacro %}
