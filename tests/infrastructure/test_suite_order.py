"""The suite's own organisation for speed (tests/conftest.py, docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONGEST_FIRST

REPO = Path(__file__).resolve().parents[2]


def test_every_file_ranked_longest_first_exists_once() -> None:
    # A renamed or deleted file would silently fall back to pytest's order.
    assert [p for p in LONGEST_FIRST if not (REPO / p).is_file()] == []
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
