"""`athlon-flex bench --arrivals`: the real `athlon-flex watch` process, timed from a
car's arrival in the simulated showroom to the email at a local SMTP server."""

from __future__ import annotations

from athlon_flex.settings import Settings
from simulation.latency import run_latency_bench


def test_each_arrival_is_timed_to_the_one_email_that_names_it(
    settings: Settings,
) -> None:
    echoed: list[str] = []

    report = run_latency_bench(
        settings.model_copy(
            update={
                "athlon_watch_interval_seconds": 0.5,
                "athlon_watch_min_gap_seconds": 0,
            }
        ),
        clusters=3,
        vehicles_per_cluster=2,
        latency_ms=5,
        arrivals=2,
        spacing_seconds=(0.5, 1.0),
        quiet_seconds=1.0,
        echo=echoed.append,
    )

    assert len(report.latencies) == 2
    assert all(latency > 0 for latency in report.latencies)
    assert report.times_named == [1, 1]  # each arrival in exactly one email
    # The first cycle's email (every car), then one or two for the arrivals.
    assert report.emails in (2, 3)
    assert report.churn_requests > 0
    assert report.quiet_seconds == 1.0
    assert echoed[0] == "first cycle done: 1 email(s); injecting arrivals"
    assert "| 2 |" in report.table()
