"""docs/deploy.md's "Without Docker" units and cron lines, checked as written.

The systemd units are extracted from the page and verified by `systemd-analyze`
(with the paths pointed at this checkout), their calendars parsed by it, and every
command they run is parsed by the real CLI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = "/opt/athlon-flex-notifier"


def _section() -> str:
    text = (REPO / "docs" / "deploy.md").read_text()
    start = text.index("## Without Docker")
    return text[start : text.index("\n## ", start + 5)]


def _units() -> dict[str, str]:
    blocks = re.findall(r"```ini\n(.*?)```", _section(), flags=re.DOTALL)
    units = {}
    for block in blocks:
        first, _, body = block.partition("\n")
        units[first.removeprefix("# /etc/systemd/system/")] = body
    return units


def _cli_accepts(command: str) -> None:
    """The CLI parses this command line (with --help: nothing runs)."""
    args = command.split()
    assert Path(args[0]).name == "athlon-flex"
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (command, result.stderr)


def test_the_page_has_a_service_and_a_timer_for_the_cycle_and_the_digest() -> None:
    units = _units()
    assert set(units) == {
        "athlon-flex.service",
        "athlon-flex.timer",
        "athlon-flex-daily.service",
        "athlon-flex-daily.timer",
    }
    assert (
        f"ExecStart={INSTALL}/.venv/bin/athlon-flex run\n"
        in (units["athlon-flex.service"])
    )
    assert "notify --cadence daily" in units["athlon-flex-daily.service"]
    assert "OnCalendar=*:0/10\n" in units["athlon-flex.timer"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_units_verify_and_their_calendars_parse(tmp_path: Path) -> None:
    athlon_flex = Path(sys.executable).parent / "athlon-flex"
    for name, body in _units().items():
        body = body.replace(f"{INSTALL}/.venv/bin/athlon-flex", str(athlon_flex))
        body = body.replace(INSTALL, str(tmp_path)).replace("User=athlon\n", "")
        (tmp_path / name).write_text(body)
        for calendar in re.findall(r"^OnCalendar=(.+)$", body, flags=re.MULTILINE):
            parsed = subprocess.run(
                ["systemd-analyze", "calendar", calendar],
                capture_output=True,
                text=True,
                check=False,
            )
            assert parsed.returncode == 0, (name, parsed.stderr)
    files = sorted(str(path) for path in tmp_path.iterdir())
    verified = subprocess.run(
        ["systemd-analyze", "verify", *files],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == ""


def test_every_documented_command_parses_in_the_real_cli() -> None:
    commands = [
        line.split("=", 1)[1]
        for body in _units().values()
        for line in body.splitlines()
        if line.startswith("ExecStart=")
    ]
    crontab = re.search(r"\*/10 \* \* \* \*.*?\n```", _section(), flags=re.DOTALL)
    assert crontab
    cron_lines = [
        line
        for line in crontab.group(0).removesuffix("```").splitlines()
        if line and not line.startswith("CRON_TZ=")
    ]
    assert [line.split()[:5] for line in cron_lines] == [
        ["*/10", "*", "*", "*", "*"],
        ["0", "6", "*", "*", "*"],
    ]
    for line in cron_lines:
        command = line.split("&& ", 1)[1].split(" >>", 1)[0]
        commands.append(command)
    assert len(commands) == 4
    for command in commands:
        _cli_accepts(command)
