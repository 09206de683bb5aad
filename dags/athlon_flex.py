"""`athlon_flex`: load the showroom, rebuild its history, notify; every 10 minutes and
whenever the showroom changes (an AssetWatcher with watcher.trigger's trigger).

Wiring only. Each task calls the stage function the CLI calls (docs/architecture.md),
imported inside the task, so parsing this file imports no dlt or dbt and touches no
database or network. Failure alerts (ALERT_AFTER_FAILURES failed runs in a row, one
email, one more on recovery) are in watcher/alerts.py. docs/deploy.md explains
why dbt runs as one task rather than one task per model.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronTriggerTimetable,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
    dag,
    task,
)

from watcher.alerts import AirflowAlerts
from watcher.trigger import ShowroomChangedTrigger

if TYPE_CHECKING:
    from athlon_flex.settings import Settings

T = TypeVar("T")
alerts = AirflowAlerts()

# The showroom as an asset whose watcher (in the triggerer) asks `GET VehicleCluster`
# every ATHLON_WATCH_INTERVAL_SECONDS and emits an event when it differs from the
# last load: a run starts then, or at the next 10-minute tick, whichever is first.
SHOWROOM = Asset(
    name="athlon_flex_showroom",
    uri="https://flex.athlon.com/api/v1/VehicleCluster",
    watchers=[
        AssetWatcher(
            name="athlon_flex_showroom_watch", trigger=ShowroomChangedTrigger()
        )
    ],
)

# A failing data test, a bad setting or a bad subscriptions file is not fixed by
# trying again a minute later: such a task fails at once, and the next scheduled run
# is the retry. Everything else
# (API or SMTP trouble, the pipeline lock held by a manual run) is retried with backoff.
NOT_RETRYABLE = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[
                "transform.runner.TransformError",
                "athlon_flex.settings.SettingsError",
                "athlon_flex.errors.ConfigurationError",
            ],
            action=RetryAction.FAIL,
            reason="retrying cannot fix this; the next scheduled run tries again",
        )
    ]
)

DOC_MD = """
### Athlon Flex watcher

Every 10 minutes, and as soon as the showroom changes (the asset
`athlon_flex_showroom`'s watcher in the triggerer asks `GET VehicleCluster` every
30 s and compares it with the last load): **load** the whole showroom into `raw`
(all or nothing) → **dbt_build** (`dbt source freshness`: the load really landed;
then snapshots, marts and every data test; a stale source or a failing test stops
the run here) → **notify** the recipients on `instant` cadence.
**daily_digest_due** → **notify_daily_digest** sends the daily digests when a
recipient's digest time (`NOTIFY_DAILY_TIME`, `NOTIFY_TIMEZONE`, or their own in
the subscriptions file) has passed since the last successful run;
otherwise it is skipped.

**Trigger with config** (play button ▸ *Trigger DAG w/ config*):
- `allow_shrink`: accept a showroom that shrank more than `ATHLON_MAX_SHRINK_PERCENT`
  (the load refuses it otherwise and every run fails until someone does this).
- `baseline`: `true` records every open window as notified without sending.
- `extra_filters`: narrow this run's notify to cars that also match one of these
  filter sets, e.g. `[{"make": "^(Tesla|Polestar)$", "max_price_per_month": 600}]`
  (regexes on any column of `marts.vehicle_availability` plus numeric bounds, as in
  the subscriptions file). Cars left out are not recorded: the next run sends them.

When runs fail `ALERT_AFTER_FAILURES` times in a row the operator gets one email
(`ALERT_EMAIL_TO`, else `EMAIL_TO`), and one more when a run succeeds again;
`notifier.pipeline_health` holds the count.
"""


def _run_locked(stage: Callable[[Settings], T]) -> T:
    """Run a stage under the pipeline lock, like `athlon-flex run` does.

    The lock keeps a manual CLI cycle and this DAG from writing at once; a task that
    finds it taken fails at once and Airflow retries it after the backoff.
    """
    from athlon_flex.settings import load_settings
    from watcher.cycle import run_locked

    settings = load_settings()
    return run_locked(settings, lambda: stage(settings))


@dag(
    dag_id="athlon_flex",
    description="Load the Athlon Flex showroom, rebuild history and marts, notify.",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/10 * * * *", timezone="UTC"),
        assets=SHOWROOM,
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # One task at a time: the stages share the pipeline lock, and a small machine
    # gains nothing from running the two notify tasks side by side.
    max_active_tasks=1,
    dagrun_timeout=timedelta(minutes=60),
    default_args={
        "owner": "athlon-flex",
        "retries": 2,
        # The base delay is Airflow's [core] default_task_retry_delay (the compose
        # stack sets 60 s): 1 min, then 2 min, capped below.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "retry_policy": NOT_RETRYABLE,
        "on_failure_callback": alerts.on_task_failure,
    },
    on_failure_callback=alerts.on_run_failure,
    on_success_callback=alerts.on_run_success,
    params={
        "allow_shrink": Param(
            False,
            type="boolean",
            title="Allow shrink",
            description="Accept a showroom that shrank more than "
            "ATHLON_MAX_SHRINK_PERCENT against the last load.",
        ),
        "baseline": Param(
            None,
            type=["null", "boolean"],
            title="Baseline",
            description="true: record every open window as notified without "
            "sending. Empty: NOTIFY_BASELINE decides.",
        ),
        "extra_filters": Param(
            [],
            type="array",
            items={"type": "object"},
            title="Extra filters",
            description="Narrow this run's notify to cars matching one of these "
            'sets, e.g. [{"make": "^Tesla$", "max_price_per_month": 600}]; the rest '
            "go out with the next run.",
        ),
    },
    doc_md=DOC_MD,
    tags=["athlon-flex", "elt"],
)
def athlon_flex() -> None:
    @task(execution_timeout=timedelta(minutes=20))
    def load(params: dict[str, Any] | None = None) -> str:
        """Fetch the whole showroom and land it in `raw` (all or nothing)."""
        from loader.pipeline import load as load_stage

        allow_shrink = bool((params or {}).get("allow_shrink"))
        summary = _run_locked(lambda s: load_stage(s, allow_shrink=allow_shrink))
        return str(summary)

    @task(execution_timeout=timedelta(minutes=25))
    def dbt_build() -> str:
        """`dbt source freshness` (the load really landed), then `dbt build`."""
        from athlon_flex.settings import load_settings
        from transform.runner import build, check_source_freshness

        # One task, not two: each task is a fresh process that imports dbt and
        # reads its project, which cost a separate freshness task a median 19 s
        # per run under the latency bench (docs/benchmarks.md). A stale `raw`
        # still stops the run before the build, and is still not retried.
        check_source_freshness(load_settings())
        return str(_run_locked(build))

    # Before daily_digest_due (Airflow's default weight would put the digest
    # check, which has a task downstream, first): one task at a time, and the
    # instant emails are what a new car waits for.
    @task(execution_timeout=timedelta(minutes=10), priority_weight=10)
    def notify(params: dict[str, Any] | None = None) -> str:
        """Email the `instant` recipients about windows they have not heard of."""
        from notifier.stage import notify as notify_stage

        params = params or {}
        summary = _run_locked(
            lambda s: notify_stage(
                s,
                baseline=params.get("baseline"),
                cadence="instant",
                extra_filters=params.get("extra_filters") or None,
            )
        )
        return str(summary)

    @task.short_circuit(execution_timeout=timedelta(minutes=2))
    def daily_digest_due(prev_start_date_success: Any = None) -> bool:
        """Whether a daily digest time passed since the last successful run."""
        from athlon_flex.settings import load_settings
        from notifier.schedule import due_daily_digest

        # Airflow hands a lazy proxy; unwrap it (None before the first success).
        since = getattr(prev_start_date_success, "__wrapped__", prev_start_date_success)
        return due_daily_digest(load_settings(), datetime.now(UTC), since=since)

    @task(execution_timeout=timedelta(minutes=10))
    def notify_daily_digest() -> str:
        """Email the `daily` recipients their digest (windows opened before it)."""
        from notifier.stage import notify as notify_stage

        return str(_run_locked(lambda s: notify_stage(s, cadence="daily")))

    built = load() >> dbt_build()
    built >> notify()
    built >> daily_digest_due() >> notify_daily_digest()


athlon_flex()
