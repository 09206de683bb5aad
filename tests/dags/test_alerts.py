"""Failure alerts: one email per outage to the operator, one when it is over.

Real PostgreSQL holds notifier.pipeline_health, a real SMTP server receives the mail.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from athlon_flex.settings import Settings
from notifier.mailer import MailError
from tests.support.smtp import SmtpServer
from watcher.alerts import (
    AlertOutcome,
    PipelineHealth,
    read_health,
    record_run_failure,
    record_run_success,
    record_task_error,
)

PIPELINE = "athlon_flex"
OPERATOR = "ops@example.org"


@pytest.fixture
def alert_settings(
    make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> Settings:
    return make_settings(
        **smtp_server.settings_overrides(sender="watcher@example.org"),
        email_to=["someone@example.org"],
        alert_email_to=[OPERATOR],
        alert_after_failures=3,
    )


def _fail(settings: Settings, run: int) -> AlertOutcome:
    return record_run_failure(
        settings,
        pipeline=PIPELINE,
        run_id=f"scheduled__run{run}",
        run_url=f"http://airflow.local:8080/dags/athlon_flex/runs/scheduled__run{run}",
    )


def _fail_runs(settings: Settings, runs: range) -> list[AlertOutcome]:
    """Record each run in `runs` as failed, in order; their outcomes."""
    return [_fail(settings, run) for run in runs]


def _health(settings: Settings) -> PipelineHealth:
    """The pipeline's health row, which must exist."""
    health = read_health(settings, PIPELINE)
    assert health is not None
    return health


def test_three_failed_runs_in_a_row_send_exactly_one_alert(
    alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    record_task_error(
        alert_settings,
        pipeline=PIPELINE,
        task_id="load",
        error="Athlon API returned 503 for VehicleCluster after 5 tries",
    )
    outcomes = _fail_runs(alert_settings, range(1, 7))

    assert outcomes == [
        AlertOutcome.RECORDED,
        AlertOutcome.RECORDED,
        AlertOutcome.ALERT_SENT,
        AlertOutcome.RECORDED,
        AlertOutcome.RECORDED,
        AlertOutcome.RECORDED,
    ]
    assert len(smtp_server.messages) == 1
    alert = smtp_server.messages[0]
    assert alert.rcpt_tos == (OPERATOR,)
    assert alert.mail_from == "watcher@example.org"
    assert alert.subject == "[athlon-flex] athlon_flex has failed 3 runs in a row"
    body = alert.text
    assert "load: Athlon API returned 503 for VehicleCluster after 5 tries" in body
    assert "Latest failed run: scheduled__run3" in body
    assert "http://airflow.local:8080/dags/athlon_flex/runs/scheduled__run3" in body
    health = _health(alert_settings)
    assert health.consecutive_failures == 6
    assert health.alerted_at is not None


def test_recovery_after_an_alert_sends_one_recovery_email_and_resets(
    alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    _fail_runs(alert_settings, range(1, 5))
    smtp_server.clear()

    first = record_run_success(alert_settings, pipeline=PIPELINE, run_id="run5")
    second = record_run_success(alert_settings, pipeline=PIPELINE, run_id="run6")

    assert (first, second) == (AlertOutcome.RECOVERY_SENT, AlertOutcome.RECORDED)
    assert [m.subject for m in smtp_server.messages] == [
        "[athlon-flex] athlon_flex recovered"
    ]
    assert smtp_server.messages[0].rcpt_tos == (OPERATOR,)
    assert "run run5 succeeded after 4 runs failed in a row" in (
        smtp_server.messages[0].text
    )
    health = _health(alert_settings)
    assert (health.consecutive_failures, health.alerted_at, health.last_error) == (
        0,
        None,
        None,
    )
    assert health.last_success_at is not None


def test_a_second_outage_alerts_again(
    alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    _fail_runs(alert_settings, range(1, 4))
    record_run_success(alert_settings, pipeline=PIPELINE, run_id="run4")
    _fail_runs(alert_settings, range(5, 8))

    assert [m.subject for m in smtp_server.messages] == [
        "[athlon-flex] athlon_flex has failed 3 runs in a row",
        "[athlon-flex] athlon_flex recovered",
        "[athlon-flex] athlon_flex has failed 3 runs in a row",
    ]


def test_short_outage_below_the_threshold_sends_nothing(
    alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    _fail(alert_settings, 1)
    _fail(alert_settings, 2)
    outcome = record_run_success(alert_settings, pipeline=PIPELINE, run_id="run3")

    assert outcome == AlertOutcome.RECORDED
    assert smtp_server.messages == []


def test_the_same_run_recorded_twice_counts_once(
    alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    for _ in range(3):  # a callback retried, or a cleared run failing again
        _fail(alert_settings, 1)
    _fail(alert_settings, 2)

    assert _health(alert_settings).consecutive_failures == 2
    assert smtp_server.messages == []


def test_alert_falls_back_to_email_to_without_alert_email_to(
    make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    settings = make_settings(
        **smtp_server.settings_overrides(),
        email_to=["a@example.org", "b@example.org"],
        alert_after_failures=1,
    )
    assert _fail(settings, 1) == AlertOutcome.ALERT_SENT
    assert sorted(m.rcpt_tos for m in smtp_server.messages) == [
        ("a@example.org",),
        ("b@example.org",),
    ]


def test_refused_alert_is_sent_by_the_next_failed_run(
    alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    _fail(alert_settings, 1)
    _fail(alert_settings, 2)
    smtp_server.refuse_with("451 try again later")
    with pytest.raises(MailError, match="451 try again later"):
        _fail(alert_settings, 3)
    health = _health(alert_settings)
    assert (health.consecutive_failures, health.alerted_at) == (3, None)

    smtp_server.refuse_with(None)
    assert _fail(alert_settings, 4) == AlertOutcome.ALERT_SENT
    assert len(smtp_server.messages) == 1
    assert "has failed 4 runs in a row" in smtp_server.messages[0].subject


def test_without_email_settings_the_alert_is_logged_not_sent(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(alert_after_failures=1)
    assert _fail(settings, 1) == AlertOutcome.NOT_CONFIGURED
    assert "athlon_flex has failed 1 run in a row (not emailed" in caplog.text
    assert _health(settings).alerted_at is None
