"""`athlon-flex`: the pipeline's stages from the command line, without Airflow.

Each command reads the one configuration, runs one stage function (the same ones the
DAG calls) and turns a failure into one clear message and a non-zero exit code.
Heavy libraries (dlt, dbt) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

from athlon_flex.errors import ConfigurationError, StageError
from athlon_flex.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help=(
        "Watch the Athlon Flex showroom, keep every car's history in PostgreSQL and "
        "tell people when a car they want becomes available."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("athlon_flex")
T = TypeVar("T")

# Libraries that log every step at INFO; their warnings still show.
_CHATTY_LOGGERS = ("dlt", "dbt", "urllib3", "httpx", "httpcore", "pgserver", "mail.log")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    if not verbose:
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug detail.")
    ] = False,
) -> None:
    """Configure logging once for every command."""
    _configure_logging(verbose)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def _locked(settings: Settings, stage: Callable[[], T]) -> Callable[[], T]:
    """The stage under the pipeline lock, so it never writes next to a running cycle."""

    def run() -> T:
        from watcher.cycle import run_locked

        return run_locked(settings, stage)

    return run


def _run_stage(stage: Callable[[], T]) -> T:
    """Run a stage; a StageError becomes its message on stderr and exit code 1.

    A ConfigurationError (a bad subscriptions file, a vanished email channel) exits
    2, like a bad setting: what the user wrote has to change, not the weather.
    """
    try:
        return stage()
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    except StageError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(code=130) from None


AllowShrink = Annotated[
    bool,
    typer.Option(
        "--allow-shrink",
        help="Accept a showroom that shrank by more than ATHLON_MAX_SHRINK_PERCENT.",
    ),
]
Baseline = Annotated[
    bool | None,
    typer.Option(
        "--baseline/--no-baseline",
        help=(
            "Record every open window as notified without sending (first run, news "
            "from now on only). Default: NOTIFY_BASELINE."
        ),
        show_default=False,
    ),
]


@app.command()
def load(allow_shrink: AllowShrink = False) -> None:
    """Fetch the whole showroom and land it in schema `raw` (all or nothing)."""
    settings = _settings()
    from loader.pipeline import load as load_stage

    summary = _run_stage(
        _locked(settings, lambda: load_stage(settings, allow_shrink=allow_shrink))
    )
    typer.echo(str(summary))


@app.command()
def transform(
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help=(
                "Rebuild the incremental marts from the whole history (after "
                "changing NOTIFY_GRACE_MINUTES); snapshots are kept."
            ),
        ),
    ] = False,
) -> None:
    """Run `dbt build`: snapshots, models and every data test."""
    settings = _settings()
    from transform.runner import build

    summary = _run_stage(
        _locked(settings, lambda: build(settings, full_refresh=full_refresh))
    )
    typer.echo(str(summary))


@app.command()
def notify(
    baseline: Baseline = None,
    cadence: Annotated[
        str,
        typer.Option(help="Which recipients: `instant` or `daily` (digest)."),
    ] = "instant",
    console: Annotated[
        bool,
        typer.Option(
            "--console",
            help=(
                "Accept the console (log) channel although email was configured "
                "before: stop emailing on purpose."
            ),
        ),
    ] = False,
    test: Annotated[
        bool,
        typer.Option(
            "--test",
            help=(
                "Send a test message to every configured channel (each email "
                "recipient, each push URL, or the console), print which worked; "
                "records nothing."
            ),
        ),
    ] = False,
) -> None:
    """Email (and log) the availability windows recipients have not heard of yet."""
    settings = _settings()
    from notifier.stage import check_configuration, send_test_messages
    from notifier.stage import notify as notify_stage

    _run_stage(lambda: check_configuration(settings))
    if test:
        checks = _run_stage(lambda: send_test_messages(settings))
        for check in checks:
            typer.echo(str(check))
        failed = [check for check in checks if check.error]
        if failed:
            typer.echo(
                f"error: {len(failed)} of {len(checks)} channel(s) failed the test",
                err=True,
            )
            raise typer.Exit(code=1)
        return
    if cadence not in ("instant", "daily"):
        typer.echo("error: --cadence must be `instant` or `daily`", err=True)
        raise typer.Exit(code=2)
    summary = _run_stage(
        _locked(
            settings,
            lambda: notify_stage(
                settings, baseline=baseline, cadence=cadence, console=console
            ),
        )
    )
    typer.echo(str(summary))


@app.command()
def run(allow_shrink: AllowShrink = False, baseline: Baseline = None) -> None:
    """Load, then transform, then notify; stop at the first failure."""
    settings = _settings()
    from notifier.stage import check_configuration
    from watcher.cycle import run_cycle

    # A typo in the subscriptions file stops the cycle before it loads anything.
    _run_stage(lambda: check_configuration(settings))
    summary = _run_stage(
        lambda: run_cycle(settings, allow_shrink=allow_shrink, baseline=baseline)
    )
    typer.echo(f"load: {summary.load}")
    typer.echo(f"transform: {summary.transform}")
    typer.echo(f"notify: {summary.notify}")


@app.command()
def watch() -> None:
    """Run a cycle whenever the showroom changes, and a full one every 10 minutes.

    Asks `GET VehicleCluster` every ATHLON_WATCH_INTERVAL_SECONDS (one request) and
    runs a cycle as soon as it differs from the last load, at most one per
    ATHLON_WATCH_MIN_GAP_SECONDS. Ctrl-C stops it between two stages (twice: at once).
    """
    settings = _settings()
    import signal
    import threading

    from watcher.watch import Watch

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        typer.echo(
            "stopping after the current stage (Ctrl-C again stops at once)", err=True
        )
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    _run_stage(lambda: Watch(settings, stop=stop).run())
    typer.echo("watch stopped")


@app.command()
def status() -> None:
    """Say where the database, the dbt project and the DAGs are, and what runs."""
    settings = _settings()
    from athlon_flex.database import embedded_status
    from athlon_flex.dbt_project import PROJECT_DIR
    from watcher.paths import dags_folder

    typer.echo(f"dbt project: {PROJECT_DIR}")
    typer.echo(f"Airflow DAGs: {dags_folder()}")
    demo = embedded_status(_demo_dir(settings))
    if demo.running:  # `athlon-flex demo` leaves its own server running
        typer.echo(f"the demo's {demo}")
    if not settings.uses_embedded_postgres:
        typer.echo(
            f"PostgreSQL: {settings.postgres_host}:{settings.postgres_port}/"
            f"{settings.postgres_db} (POSTGRES_HOST; nothing embedded to manage)"
        )
        return
    typer.echo(str(embedded_status(settings.data_dir)))


def _demo_dir(settings: Settings) -> Path:
    """Where `athlon-flex demo` keeps its own embedded server (simulation/demo.py)."""
    return settings.data_dir / "demo"


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL (its data stays; the next command restarts it)."""
    settings = _settings()
    from athlon_flex.database import embedded_status, stop_embedded

    demo_dir = _demo_dir(settings)
    demo_running = embedded_status(demo_dir).running
    if demo_running:
        # Under the demo server's own lock (a demo still running is refused), on
        # its `postgres` database, so that nothing is created there.
        demo = settings.model_copy(
            update={
                "athlon_data_dir": demo_dir,
                "postgres_host": None,
                "postgres_db": "postgres",
            }
        )
        _run_stage(_locked(demo, lambda: None))
        _run_stage(lambda: stop_embedded(demo_dir))
        typer.echo(f"the demo's embedded PostgreSQL stopped; data kept in {demo_dir}")
    if not settings.uses_embedded_postgres:
        if demo_running:
            return
        typer.echo("error: POSTGRES_HOST is set: there is no embedded server", err=True)
        raise typer.Exit(code=2)
    if not embedded_status(settings.data_dir).running:
        typer.echo(f"embedded PostgreSQL already stopped ({settings.data_dir})")
        return

    # Refuse while a cycle runs (it holds the pipeline lock on this very server);
    # the lock is let go before the stop, whose fast shutdown would cut its session.
    _run_stage(_locked(settings, lambda: None))
    _run_stage(lambda: stop_embedded(settings.data_dir))
    typer.echo(f"embedded PostgreSQL stopped; data kept in {settings.data_dir}")


@app.command("migrate-from-original")
def migrate_from_original(
    source: Annotated[
        str | None,
        typer.Option(
            help=(
                "The older tool's PostgreSQL URL. Default: ORIGINAL_DATABASE_URL, "
                "which keeps its password off the command line (where `ps` shows it)."
            ),
            show_default=False,
        ),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write. Without it: a dry run that reports.")
    ] = False,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            help="Who the old tool mailed (repeatable). Default: EMAIL_TO.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Take over the older tool's history and what it already mailed (dry run first)."""
    settings = _settings()
    from watcher.original.migrate import migrate

    url = source or (
        settings.original_database_url.get_secret_value()
        if settings.original_database_url
        else None
    )
    if not url:
        typer.echo(
            "error: name the older tool's database: ORIGINAL_DATABASE_URL or --source",
            err=True,
        )
        raise typer.Exit(code=2)
    if recipient:  # the one rule for addresses (athlon_flex/addresses.py)
        from athlon_flex.addresses import unique_addresses

        try:
            recipients = tuple(unique_addresses(recipient, where="--recipient"))
        except ValueError as error:
            typer.echo(f"error: --recipient: {error}", err=True)
            raise typer.Exit(code=2) from None
    else:
        recipients = tuple(settings.email_to)
    summary = _run_stage(
        _locked(
            settings,
            lambda: migrate(settings, url, recipients=recipients, apply=apply),
        )
    )
    typer.echo(str(summary))


@app.command("import-original-filter")
def import_original_filter(
    old_filter: Annotated[
        str,
        typer.Argument(
            help="The old tool's filter: a JSON object, or @FILE holding one.",
            metavar="FILTER",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(help="Write the subscriptions file here (never overwrites)."),
    ] = None,
    email: Annotated[
        list[str] | None,
        typer.Option(help="Recipient (repeatable). Default: EMAIL_TO."),
    ] = None,
    cadence: Annotated[
        str, typer.Option(help="daily (06:00, as the old tool) or instant.")
    ] = "daily",
) -> None:
    """Turn the old tool's filter into a subscriptions file; say what cannot map."""
    import json

    import yaml
    from pydantic import ValidationError

    from notifier.subscriptions import SubscriptionsFile
    from watcher.original.filters import import_filter, subscriptions_yaml

    def refuse(message: str) -> typer.Exit:
        typer.echo(f"error: {message}", err=True)
        return typer.Exit(code=2)

    text = old_filter
    if old_filter.startswith("@"):
        try:
            text = Path(old_filter[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise refuse(f"cannot read {old_filter[1:]}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise refuse(
                f"{old_filter[1:]} is not UTF-8 text ({error.reason} at byte "
                f"{error.start}); save it as UTF-8"
            ) from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise refuse(f"the filter is not JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise refuse("the filter must be a JSON object of attribute: regex")
    if cadence not in ("daily", "instant"):
        raise refuse("--cadence must be `daily` or `instant`")
    emails = list(email or _settings().email_to)
    if not emails:
        raise refuse("no recipient: pass --email or set EMAIL_TO")
    if output is not None and output.exists():
        raise refuse(f"{output} exists; choose another --output")
    imported = import_filter(parsed)
    for line in imported.report():
        typer.echo(line, err=True)
    if parsed and not imported.filters:
        raise refuse(
            "nothing in the filter could be mapped; an empty filter would mail every "
            "car, so no file was written"
        )
    document = subscriptions_yaml(imported, emails, cadence)
    try:  # the notifier's own check, so the file is known to load
        SubscriptionsFile.model_validate(yaml.safe_load(document))
    except ValidationError as error:
        raise refuse(
            f"the result does not validate: {error.errors()[0]['msg']}"
        ) from None
    if output is None:
        typer.echo(document, nl=False)
    else:
        try:  # "x": never overwrites, also a file created since the check above
            with output.open("x", encoding="utf-8") as handle:
                handle.write(document)
        except FileExistsError:
            raise refuse(f"{output} exists; choose another --output") from None
        except OSError as error:  # a missing folder, a read-only file system
            raise refuse(
                f"cannot write {output}: {error.strerror or error}; nothing was written"
            ) from None
        typer.echo(f"wrote {output}; set NOTIFY_SUBSCRIPTIONS_FILE to it", err=True)


@app.command("fake-api")
def fake_api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port (0 picks a free one).")
    ] = 8000,
    clusters: Annotated[int, typer.Option(min=0, help="Makes and models.")] = 100,
    vehicles_per_cluster: Annotated[
        int, typer.Option(min=1, help="Vehicles in each cluster.")
    ] = 10,
    latency_ms: Annotated[
        int, typer.Option(min=0, help="Delay added to every response.")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Same seed, same catalog.")] = 1,
    username: Annotated[
        str | None, typer.Option(help="Accept MemberLogin with this username.")
    ] = None,
    password: Annotated[str | None, typer.Option(help="... and this password.")] = None,
) -> None:
    """Serve the simulated showroom API (set ATHLON_API_URL to the printed URL)."""
    from simulation.fake_api import serve

    try:
        serve(
            host=host,
            port=port,
            clusters=clusters,
            vehicles_per_cluster=vehicles_per_cluster,
            latency_ms=latency_ms,
            seed=seed,
            username=username,
            password=password,
        )
    except (OSError, ValueError) as error:  # a taken port, half a login
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def demo(
    cycles: Annotated[int, typer.Option(min=2, help="Refreshes to run.")] = 4,
    clusters: Annotated[int, typer.Option(min=1)] = 6,
    vehicles_per_cluster: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    """Offline tour: simulated API + embedded Postgres, a changing showroom, news."""
    settings = _settings()
    from simulation.demo import run_demo

    _run_stage(
        lambda: run_demo(
            settings,
            cycles=cycles,
            clusters=clusters,
            vehicles_per_cluster=vehicles_per_cluster,
            echo=typer.echo,
        )
    )


@app.command()
def bench(
    clusters: Annotated[int, typer.Option(min=1)] = 100,
    vehicles_per_cluster: Annotated[int, typer.Option(min=1)] = 10,
    latency_ms: Annotated[int, typer.Option(min=0)] = 50,
    cycles: Annotated[int, typer.Option(min=1, help="first, steady, churn, ...")] = 3,
    arrivals: Annotated[
        int,
        typer.Option(
            min=0,
            help="Instead: run `athlon-flex watch` and time this many single "
            "arrivals from the showroom to a local inbox (needs aiosmtpd).",
        ),
    ] = 0,
    quiet_seconds: Annotated[
        float,
        typer.Option(min=0, help="With --arrivals: then count requests this long."),
    ] = 600,
    spacing_seconds: Annotated[
        tuple[float, float],
        typer.Option(help="With --arrivals: seconds between two, uniform in [a, b]."),
    ] = (20.0, 100.0),
    under: Annotated[
        Literal["watch", "airflow"],
        typer.Option(
            help="With --arrivals: what runs the cycles, `athlon-flex watch` or "
            "Airflow's services (LocalExecutor, natively; needs the airflow extra).",
        ),
    ] = "watch",
    report: Annotated[
        Path | None, typer.Option(help="Append the figures as Markdown here.")
    ] = None,
) -> None:
    """Measure full cycles against the simulated API (own database, dropped first)."""
    if under != "watch" and not arrivals:
        typer.echo("error: --under needs --arrivals N (the latency bench)", err=True)
        raise typer.Exit(code=2)
    settings = _settings()
    if arrivals:
        from simulation.latency import run_latency_bench, watch_process

        if under == "airflow":
            from simulation.airflow_latency import airflow_services as runner
        else:
            runner = watch_process
        latency = run_latency_bench(
            settings,
            clusters=clusters,
            vehicles_per_cluster=vehicles_per_cluster,
            latency_ms=latency_ms,
            arrivals=arrivals,
            spacing_seconds=spacing_seconds,
            quiet_seconds=quiet_seconds,
            echo=typer.echo,
            runner=runner,
        )
        typer.echo(latency.table())
        if report:
            with report.open("a", encoding="utf-8") as handle:
                handle.write(latency.table() + "\n\n")
        return
    from simulation.bench import run_bench, write_report

    result = run_bench(
        settings,
        clusters=clusters,
        vehicles_per_cluster=vehicles_per_cluster,
        latency_ms=latency_ms,
        cycles=cycles,
        echo=typer.echo,
    )
    typer.echo(result.table())
    if report:
        write_report(result, report)


@app.command()
def docs(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of the docs site.")
    ] = 8081,
    generate_only: Annotated[
        bool,
        typer.Option(
            "--generate-only", help="Write the static site, print its path, exit."
        ),
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Where to write the static site (default: data dir)."),
    ] = None,
) -> None:
    """Generate the dbt docs site (lineage, every model and column) and serve it."""
    settings = _settings()
    from transform.runner import check_docs_port, generate_docs, serve_docs

    if not generate_only:  # a taken port fails now, not after the generation
        _run_stage(lambda: check_docs_port(port))
    site = _run_stage(lambda: generate_docs(settings, output_dir=output_dir))
    typer.echo(f"docs site written to {site}")
    if not generate_only:
        typer.echo(f"serving on http://127.0.0.1:{port}/ (Ctrl+C stops)")
        _run_stage(lambda: serve_docs(site, port=port))


if __name__ == "__main__":
    app()
