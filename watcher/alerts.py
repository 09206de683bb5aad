"""Tell the operator when the watcher itself keeps failing: once, and once on recovery.

The old tool failed silently. Now every failed DAG run adds one to a counter in
`notifier.pipeline_health`; the run that reaches ALERT_AFTER_FAILURES in a row sends
one email to ALERT_EMAIL_TO (or EMAIL_TO), and the next successful run sends one
"recovered" email and resets the counter. A task that fails first leaves its message
in the same row, so the alert says what went wrong, not only that something did.

Why a table: the state must survive restarts and be shared by every Airflow process
(task failures are recorded by the worker, run outcomes by the DAG processor), and a
row lock makes "send exactly once" hold even when a callback runs twice. The same run
id is never counted twice, so retried callbacks and cleared runs are harmless.

The email goes out through the notifier's SMTP code (notifier.mailer), with the same
settings as the notifications. This module imports only the standard library at the
top: the DAG files import it while Airflow parses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import psycopg2.extensions

    from athlon_flex.settings import Settings

log = logging.getLogger(__name__)

HEALTH_TABLE = "notifier.pipeline_health"
SUBJECT_PREFIX = "[athlon-flex]"
# Longest error text kept per row and put in an email: enough for a stage message.
MAX_ERROR_CHARS = 2000


class AlertOutcome(StrEnum):
    """What recording one run's outcome did."""

    RECORDED = "recorded"  # counted (or reset); nothing to send
    ALERT_SENT = "alert_sent"
    RECOVERY_SENT = "recovery_sent"
    NOT_CONFIGURED = "not_configured"  # an email was due but there is no sender


@dataclass(frozen=True)
class PipelineHealth:
    """One pipeline's row of notifier.pipeline_health."""

    pipeline: str
    consecutive_failures: int
    failing_since: datetime | None
    last_failed_run_id: str | None
    last_error: str | None
    alerted_at: datetime | None
    last_success_at: datetime | None


_COLUMNS = (
    "pipeline, consecutive_failures, failing_since, last_failed_run_id, last_error, "
    "alerted_at, last_success_at"
)


def _open(settings: Settings) -> Any:
    """A connection context to the project database, the health table in place.

    The table is one of the notifier schema's, whose one owner is dbt's macro
    create_notifier_tables (run before every build). A failure before the very
    first build finds no table: then the macro runs on its own, once.
    """
    from athlon_flex.database import connect, ensure_postgres

    connection = ensure_postgres(settings)
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute("select to_regclass(%s) is not null", (HEALTH_TABLE,))
        (exists,) = cursor.fetchone()
    if not exists:
        from transform.runner import run_operation

        run_operation(settings, "ensure_notifier_tables")
    return connect(connection)


def _fetch(
    conn: psycopg2.extensions.connection, pipeline: str, *, lock: bool = False
) -> PipelineHealth | None:
    with conn.cursor() as cursor:
        cursor.execute(
            f"select {_COLUMNS} from {HEALTH_TABLE} where pipeline = %s"
            + (" for update" if lock else ""),
            (pipeline,),
        )
        row = cursor.fetchone()
    return PipelineHealth(*row) if row else None


def read_health(settings: Settings, pipeline: str) -> PipelineHealth | None:
    """The pipeline's current row, or None before its first recorded outcome."""
    with _open(settings) as conn:
        return _fetch(conn, pipeline)


def record_task_error(
    settings: Settings, *, pipeline: str, task_id: str, error: str
) -> None:
    """Keep the failed task's message; the run's failure alert quotes it."""
    message = f"{task_id}: {error}".strip()[:MAX_ERROR_CHARS]
    with _open(settings) as conn, conn.cursor() as cursor:
        cursor.execute(
            f"""
                insert into {HEALTH_TABLE} as h (pipeline, last_error)
                values (%s, %s)
                on conflict (pipeline) do update
                    set last_error = excluded.last_error, updated_at = now()
                """,
            (pipeline, message),
        )


def record_run_failure(
    settings: Settings,
    *,
    pipeline: str,
    run_id: str,
    threshold: int | None = None,
    run_url: str | None = None,
) -> AlertOutcome:
    """Count a failed run; alert once when `threshold` runs in a row have failed.

    `threshold` defaults to ALERT_AFTER_FAILURES. Counting commits first, so a failed
    send does not lose the count; the send itself happens under the row lock and is
    marked in the same transaction, so only one process sends, and a send that failed
    is tried again by the next failed run.
    """
    threshold = threshold or settings.alert_after_failures
    with _open(settings) as conn:
        with conn.cursor() as cursor:
            # The same run id counts once: callbacks may run twice, runs be cleared.
            cursor.execute(
                f"""
                insert into {HEALTH_TABLE} as h
                    (pipeline, consecutive_failures, failing_since, last_failed_run_id)
                values (%(pipeline)s, 1, now(), %(run_id)s)
                on conflict (pipeline) do update set
                    consecutive_failures = h.consecutive_failures + case
                        when h.last_failed_run_id is distinct from %(run_id)s
                            or h.consecutive_failures = 0
                        then 1 else 0 end,
                    failing_since = coalesce(h.failing_since, now()),
                    last_failed_run_id = %(run_id)s,
                    updated_at = now()
                """,
                {"pipeline": pipeline, "run_id": run_id},
            )
        conn.commit()

        health = _fetch(conn, pipeline, lock=True)
        assert health is not None  # inserted just above
        log.info(
            "Pipeline %s: run %s failed (%d in a row; alert after %d)",
            pipeline,
            run_id,
            health.consecutive_failures,
            threshold,
        )
        if health.consecutive_failures < threshold or health.alerted_at is not None:
            conn.rollback()
            return AlertOutcome.RECORDED
        subject, body = _failure_message(health, run_url)
        if not send_operator_email(settings, subject=subject, body=body):
            conn.rollback()
            return AlertOutcome.NOT_CONFIGURED
        with conn.cursor() as cursor:
            cursor.execute(
                f"update {HEALTH_TABLE} set alerted_at = now(), updated_at = now() "
                "where pipeline = %s",
                (pipeline,),
            )
        conn.commit()
        return AlertOutcome.ALERT_SENT


def record_run_success(
    settings: Settings, *, pipeline: str, run_id: str, run_url: str | None = None
) -> AlertOutcome:
    """Reset the counter; if an alert went out for this outage, say it is over."""
    with _open(settings) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                f"insert into {HEALTH_TABLE} (pipeline) values (%s) "
                "on conflict (pipeline) do nothing",
                (pipeline,),
            )
        conn.commit()
        health = _fetch(conn, pipeline, lock=True)
        assert health is not None
        outcome = AlertOutcome.RECORDED
        if health.alerted_at is not None:
            subject, body = _recovery_message(health, run_id, run_url)
            if send_operator_email(settings, subject=subject, body=body):
                outcome = AlertOutcome.RECOVERY_SENT
            else:
                outcome = AlertOutcome.NOT_CONFIGURED
        elif health.consecutive_failures:
            log.info(
                "Pipeline %s recovered after %d failed run(s), below the alert "
                "threshold; no email",
                pipeline,
                health.consecutive_failures,
            )
        with conn.cursor() as cursor:
            cursor.execute(
                f"""
                update {HEALTH_TABLE} set
                    consecutive_failures = 0, failing_since = null, alerted_at = null,
                    last_error = null, last_success_at = now(), updated_at = now()
                where pipeline = %s
                """,
                (pipeline,),
            )
        conn.commit()
        return outcome


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _failure_message(health: PipelineHealth, run_url: str | None) -> tuple[str, str]:
    runs = _runs(health.consecutive_failures)
    subject = f"{SUBJECT_PREFIX} {health.pipeline} has failed {runs} in a row"
    lines = [
        f"The Athlon Flex watcher (Airflow DAG {health.pipeline}) has failed {runs} "
        f"in a row, since {_when(health.failing_since)}.",
        "Until it recovers, nobody hears about new cars.",
        "",
        "Last error:",
        f"    {health.last_error or '(no task message recorded; see the task logs)'}",
        "",
        f"Latest failed run: {health.last_failed_run_id}",
    ]
    if run_url:
        lines.append(run_url)
    lines += [
        "",
        "You will get one more email when a run succeeds again; no more until then.",
    ]
    return subject, "\n".join(lines) + "\n"


def _recovery_message(
    health: PipelineHealth, run_id: str, run_url: str | None
) -> tuple[str, str]:
    runs = _runs(health.consecutive_failures)
    subject = f"{SUBJECT_PREFIX} {health.pipeline} recovered"
    lines = [
        f"The Athlon Flex watcher (Airflow DAG {health.pipeline}) works again: run "
        f"{run_id} succeeded after {runs} failed in a row (failing since "
        f"{_when(health.failing_since)}).",
        "Cars that became available meanwhile are notified by this run and the next.",
    ]
    if run_url:
        lines += ["", run_url]
    return subject, "\n".join(lines) + "\n"


def alert_recipients(settings: Settings) -> list[str]:
    """ALERT_EMAIL_TO, or else EMAIL_TO."""
    return list(settings.alert_email_to or settings.email_to)


def send_operator_email(settings: Settings, *, subject: str, body: str) -> bool:
    """Send a plain-text email to the operator; False (logged) when none is set up.

    Raises notifier.mailer.MailError when the SMTP server refuses or is unreachable.
    """
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    from notifier.mailer import Mailer, as_wire_bytes, transport_from_settings

    recipients = alert_recipients(settings)
    transport = transport_from_settings(settings)
    if not recipients or transport is None:
        log.error(
            "%s (not emailed: set EMAIL_FROM, an SMTP server or GOOGLE_APP_PASSWORD, "
            "and ALERT_EMAIL_TO or EMAIL_TO)",
            subject,
        )
        return False
    with Mailer(transport) as mailer:
        for recipient in recipients:
            message = EmailMessage()
            message["Subject"] = subject
            message["From"] = transport.sender
            message["To"] = recipient
            message["Date"] = formatdate(usegmt=True)
            message["Message-ID"] = make_msgid(
                domain=transport.sender.rpartition("@")[2] or None
            )
            message.set_content(body)
            mailer.send(as_wire_bytes(message), recipient)
    log.warning("Emailed %s: %s", ", ".join(recipients), subject)
    return True


class AirflowAlerts:
    """The DAGs' callbacks: turn an Airflow context into the calls above.

    Callbacks never raise: a broken alert must not hide the failure it reports, and
    Airflow would only log the exception anyway. `threshold` overrides
    ALERT_AFTER_FAILURES for one DAG.
    """

    def __init__(self, threshold: int | None = None) -> None:
        self.threshold = threshold

    def on_task_failure(self, context: Any) -> None:
        """Task-level: keep the failed task's error message for the alert."""
        try:
            ti = context["ti"]
            error = context.get("exception")
            text = str(error) if error is not None else "failed (no exception)"
            record_task_error(
                _settings(), pipeline=ti.dag_id, task_id=ti.task_id, error=text
            )
        except Exception:
            log.exception("Could not record the task failure for the failure alert")

    def on_run_failure(self, context: Any) -> None:
        """DAG-level: count the failed run; alert when the threshold is reached."""
        try:
            dag_id, run_id = _run_identity(context)
            record_run_failure(
                _settings(),
                pipeline=dag_id,
                run_id=run_id,
                threshold=self.threshold,
                run_url=_run_url(dag_id, run_id),
            )
        except Exception:
            log.exception("Could not record the failed run for the failure alert")

    def on_run_success(self, context: Any) -> None:
        """DAG-level: reset the counter, and send the recovery email if due."""
        try:
            dag_id, run_id = _run_identity(context)
            record_run_success(
                _settings(),
                pipeline=dag_id,
                run_id=run_id,
                run_url=_run_url(dag_id, run_id),
            )
        except Exception:
            log.exception("Could not record the successful run for the failure alert")


def _settings() -> Settings:
    from athlon_flex.settings import load_settings

    return load_settings()


def _run_identity(context: Any) -> tuple[str, str]:
    """(dag_id, run_id) from a DAG callback's context (full or minimal)."""
    dag_run = context.get("dag_run")
    if dag_run is not None:
        return dag_run.dag_id, dag_run.run_id
    return context["dag"].dag_id, context["run_id"]


def _run_url(dag_id: str, run_id: str) -> str:
    """Where the run is in the Airflow UI ([api] base_url, default localhost:8080)."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # outside Airflow, or a config that does not load
        base = ""
    base = (base or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
