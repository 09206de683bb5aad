"""Fixtures of the dbt tests."""

from __future__ import annotations

import psycopg2.extensions
import pytest

from tests.support.raw_tables import create_raw_tables


@pytest.fixture
def raw_db(db: psycopg2.extensions.connection) -> psycopg2.extensions.connection:
    """The test's database with empty raw tables, as the loader leaves a new one."""
    create_raw_tables(db)
    return db
