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
from typing import Annotated, TypeVar

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
        from athlon_flex.database import ensure_postgres
        from athlon_flex.pipeline import pipeline_lock

        with pipeline_lock(ensure_postgres(settings)):
            return stage()

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
    from athlon_flex.transform import build

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
) -> None:
    """Email (and log) the availability windows recipients have not heard of yet."""
    settings = _settings()
    from notifier.stage import check_configuration
    from notifier.stage import notify as notify_stage

    _run_stage(lambda: check_configuration(settings))
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
    from athlon_flex.pipeline import run_cycle
    from notifier.stage import check_configuration

    # A typo in the subscriptions file stops the cycle before it loads anything.
    _run_stage(lambda: check_configuration(settings))
    summary = _run_stage(
        lambda: run_cycle(settings, allow_shrink=allow_shrink, baseline=baseline)
    )
    typer.echo(f"load: {summary.load}")
    typer.echo(f"transform: {summary.transform}")
    typer.echo(f"notify: {summary.notify}")


@app.command("fake-api")
def fake_api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8000,
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
    from athlon_flex.fake_api import serve

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


@app.command()
def demo(
    cycles: Annotated[int, typer.Option(min=2, help="Refreshes to run.")] = 4,
    clusters: Annotated[int, typer.Option(min=1)] = 6,
    vehicles_per_cluster: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    """Offline tour: simulated API + embedded Postgres, a changing showroom, news."""
    settings = _settings()
    from athlon_flex.demo import run_demo

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
    report: Annotated[
        Path | None, typer.Option(help="Append the figures as Markdown here.")
    ] = None,
) -> None:
    """Measure full cycles against the simulated API (own database, dropped first)."""
    settings = _settings()
    from athlon_flex.bench import run_bench, write_report

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
    port: Annotated[int, typer.Option(help="Port of the docs site.")] = 8081,
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
    from athlon_flex.transform import generate_docs, serve_docs

    site = _run_stage(lambda: generate_docs(settings, output_dir=output_dir))
    typer.echo(f"docs site written to {site}")
    if not generate_only:
        typer.echo(f"serving on http://127.0.0.1:{port}/ (Ctrl+C stops)")
        _run_stage(lambda: serve_docs(site, port=port))


if __name__ == "__main__":
    app()
