{#-
    The notifier's own tables (docs/architecture.md), created if missing before any
    model runs (on-run-start), so `marts.vehicles_to_notify` can always be built and
    the first `dbt build` on an empty database succeeds. dbt never drops or rewrites
    them: they are the notifier's record of what it sent, declared as sources.

    Columns added after the first release come with `add column if not exists` and a
    default, so an older database gains them on its next build and an insert that
    names only the original columns (vehicle_id, available_since, recipient,
    notified_at: the old tool's migration writes those) still works and counts as
    sent: a row whose message_id is null was sent without an outbox.
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
    -- The email (notifier.outbox) that carries this window; null: sent or logged
    -- without one (console, baseline, rows migrated from the old tool).
    alter table notifier.notifications add column if not exists message_id text;
    create index if not exists notifications_message_id
    on notifier.notifications (message_id) where message_id is not null;

    -- One row per email: written (with its full text) before it is sent, marked
    -- sent after the server accepted it. An unmarked row is resent as it is, with
    -- the same Message-ID, so a crash in between never loses or visibly doubles it.
    create table if not exists notifier.outbox (
        message_id text primary key,
        recipient text not null,
        message bytea,
        created_at timestamptz not null default now(),
        sent_at timestamptz
    );
    -- A message is kept only until it is sent (then set to null): stored as it
    -- is, not compressed, which would cost the claim of each email more than the
    -- space it saves for that short time. Older databases change on their next
    -- build (only new rows are stored so).
    do $$
    begin
        if (
            select attstorage from pg_attribute
            where attrelid = 'notifier.outbox'::regclass and attname = 'message'
        ) <> 'e' then
            alter table notifier.outbox alter column message set storage external;
        end if;
    end
    $$;

    -- One row per price drop (vehicle and the moment of its new price) per
    -- recipient told about it, or being told by email message_id: claimed with the
    -- outbox row in one transaction, like notifications. A drop of a car the same
    -- email announces as new (at its new price) is recorded here too, so it is never
    -- told twice.
    create table if not exists notifier.price_drop_notifications (
        vehicle_id text not null,
        changed_at timestamptz not null,
        recipient text not null,
        notified_at timestamptz not null default now(),
        message_id text,
        primary key (vehicle_id, changed_at, recipient)
    );
    create index if not exists price_drop_notifications_message_id
    on notifier.price_drop_notifications (message_id) where message_id is not null;

    create table if not exists notifier.recipients (
        recipient text primary key,
        registered_at timestamptz not null default now()
    );
    -- When the notifier decided, once, whether this recipient starts with a
    -- baseline (NOTIFY_BASELINE); null until their first turn.
    alter table notifier.recipients
    add column if not exists baseline_decided_at timestamptz;

    -- One row per Airflow DAG: failed runs in a row and whether the operator was
    -- alerted (watcher/alerts.py counts and sends; this macro owns the table).
    create table if not exists notifier.pipeline_health (
        pipeline text primary key,
        consecutive_failures integer not null default 0,
        failing_since timestamptz,
        last_failed_run_id text,
        last_error text,
        alerted_at timestamptz,
        last_success_at timestamptz,
        updated_at timestamptz not null default now()
    );

    -- What the notifier must remember between runs (e.g. that email was set up).
    create table if not exists notifier.state (
        key text primary key,
        value text not null,
        updated_at timestamptz not null default now()
    );
{% endmacro %}
