"""`athlon-flex import-original-filter`: the old `{attribute: regex}` filter, kept.

The old tool matched with `re.match` (anchored at the start, case-sensitive) on its
vehicle columns; this project's notifier searches case-insensitively on the mart's
columns. The imported filter must pick exactly the cars the old one picked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.filters import FilterSet
from notifier.subscriptions import load_subscriptions
from watcher.original.filters import as_search, import_filter

# (old regex, value, what the old tool's re.match said)
CASES = [
    ("Tesla", "Tesla", True),
    ("Tesla", "Tesla Model 3", True),  # anchored at the start only
    ("Tesla", "tesla", False),  # case-sensitive
    ("TESLA", "Tesla", False),
    ("esla", "Tesla", False),  # not searched
    ("Kia|Tesla", "Tesla", True),  # alternation stays inside the anchor
    ("Niro|Tesla", "BMW Tesla", False),
    ("T.*3$", "Tesla 3", True),
    ("(?i)tesla", "TESLA Y", True),  # the old global flag keeps its meaning
    ("(?s)A.B", "A\nB", True),
    ("", "anything", True),
]


@pytest.mark.parametrize(("pattern", "value", "old"), CASES)
def test_rewritten_regex_matches_exactly_what_the_old_tool_matched(
    pattern: str, value: str, old: bool
) -> None:
    assert bool(re.match(pattern, value)) is old  # the case is right about the old
    flt = FilterSet.model_validate({"make": as_search(pattern)})
    assert flt.matches({"make": value}) is old


def test_renamed_attributes_are_mapped_and_the_rest_named() -> None:
    imported = import_filter(
        {
            "make": "Tesla",
            "uri": "https://flex",
            "calculated_price_in_euro_per_month": "4",
            "paint_id": "X1",
            "colour": "Blauw",
            "model_year": 2023,
            "model": "(",
        }
    )
    assert imported.filters == {
        "make": "^(?-i:Tesla)",
        "showroom_uri": "^(?-i:https://flex)",
        "price_per_month_in_euro": "^(?-i:4)",
    }
    assert imported.report() == [
        "mapped make -> make",
        "mapped uri -> showroom_uri (renamed)",
        "mapped calculated_price_in_euro_per_month -> price_per_month_in_euro "
        "(renamed) (matched against the value as text; the old tool could not)",
        "cannot map paint_id: this project does not show paint ids",
        "cannot map colour: not an attribute of the old tool's vehicles (with it the "
        "old filter matched no car at all)",
        "cannot map model_year: 2023 is not a regex (the old tool raised an error on "
        "it)",
        "cannot map model: bad regex '(' (missing ), unterminated subpattern at "
        "position 0)",
        "the imported filter is wider than the old one: it leaves out 4 "
        "attribute(s) named above",
    ]


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", "import-original-filter", *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_cli_writes_a_daily_subscriptions_file_the_notifier_loads(
    tmp_path: Path,
) -> None:
    (tmp_path / "filter.json").write_text(
        json.dumps({"make": "Tesla|Polestar", "body_type": "SUV", "paint_id": "X"})
    )
    out = tmp_path / "subscriptions.yml"
    result = _cli(
        "@filter.json", "--output", str(out), cwd=tmp_path, EMAIL_TO="a@example.nl"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "mapped make -> make",
        "mapped body_type -> body_type",
        "cannot map paint_id: this project does not show paint ids",
        "the imported filter is wider than the old one: it leaves out 1 attribute(s) "
        "named above",
        f"wrote {out}; set NOTIFY_SUBSCRIPTIONS_FILE to it",
    ]
    (subscription,) = load_subscriptions(out)
    assert subscription.email == "a@example.nl"
    assert subscription.cadence == "daily"
    (flt,) = subscription.filters
    assert flt.matches({"make": "Tesla", "body_type": "SUV"})
    assert not flt.matches({"make": "tesla", "body_type": "SUV"})
    assert not flt.matches({"make": "Polestar", "body_type": "Compact SUV"})
    assert "mailed once a day at 06:00" in out.read_text()

    again = _cli("@filter.json", "--output", str(out), cwd=tmp_path, EMAIL_TO="a@x.nl")
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {out} exists; choose another --output"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("[1, 2]", "error: the filter must be a JSON object of attribute: regex"),
        ("{make: Tesla}", "error: the filter is not JSON ("),
        (
            '{"paint_id": "X"}',
            "error: nothing in the filter could be mapped; an empty filter would mail "
            "every car, so no file was written",
        ),
    ],
)
def test_cli_refuses_bad_filters_in_one_line(
    tmp_path: Path, argument: str, message: str
) -> None:
    result = _cli(argument, "--email", "a@example.nl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_the_file_for_every_recipient_when_no_output_is_given(
    tmp_path: Path,
) -> None:
    result = _cli(
        '{"make": "Kia"}',
        "--email",
        "a@example.nl",
        "--email",
        "b@example.nl",
        "--cadence",
        "instant",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    body = result.stdout[result.stdout.index("recipients:") :]
    assert body == (
        "recipients:\n"
        "- email: a@example.nl\n"
        "  cadence: instant\n"
        "  filters:\n"
        "    make: ^(?-i:Kia)\n"
        "- email: b@example.nl\n"
        "  cadence: instant\n"
        "  filters:\n"
        "    make: ^(?-i:Kia)\n"
    )
