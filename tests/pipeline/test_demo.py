"""`athlon-flex demo`: the offline tour narrates what each cycle would notify."""

from __future__ import annotations

from pathlib import Path

import pytest

from athlon_flex.settings import Settings
from simulation.demo import run_demo


@pytest.fixture
def demo_settings(embedded_data_dir: Path) -> Settings:
    """The user's settings as a newcomer has them: nothing configured."""
    return Settings(_env_file=None, athlon_data_dir=embedded_data_dir)


def test_demo_reports_every_car_first_then_only_the_arrival(
    demo_settings: Settings,
) -> None:
    lines: list[str] = []
    run_demo(
        demo_settings, cycles=2, clusters=2, vehicles_per_cluster=2, echo=lines.append
    )

    first = lines.index("== Cycle 1: first look at the showroom")
    second = next(i for i, line in enumerate(lines) if line.startswith("== Cycle 2:"))
    assert lines[second].startswith("== Cycle 2: 2 cars leased, 1 arrives (")
    first_news = [line for line in lines[first:second] if line.startswith("   NEW ")]
    second_news = [line for line in lines[second:] if line.startswith("   NEW ")]
    assert len(first_news) == 4
    assert len(second_news) == 1
    assert lines[first + 1] == (
        "   4 cars in the showroom; 4 availability windows (4 open, 0 cars returned)"
    )
    assert lines[second + 1] == (
        "   3 cars in the showroom; 5 availability windows (3 open, 0 cars returned)"
    )
    # The demo's database lives in its own folder, never in the user's.
    assert (demo_settings.data_dir / "demo" / "pgdata" / "PG_VERSION").exists()
    assert not (demo_settings.data_dir / "pgdata").exists()
