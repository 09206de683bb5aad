"""Source freshness (checked before build by the DAG) and the docs site."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.raw_tables import CatalogState, make_vehicle, write_state
from transform.runner import (
    TransformError,
    check_source_freshness,
    docs_server,
    generate_docs,
)


def test_source_freshness_warns_after_30_minutes_and_fails_after_2_hours(
    settings, raw_db, caplog
):
    state = CatalogState.of([make_vehicle("veh-a")])
    now = datetime.now(UTC)

    write_state(raw_db, state, now - timedelta(minutes=45))
    with caplog.at_level(logging.WARNING, logger="transform.runner"):
        check_source_freshness(settings)  # a warning, not an error
    stale = [
        r.getMessage() for r in caplog.records if "getting stale" in r.getMessage()
    ]
    assert sorted(message.split(":")[0] for message in stale) == [
        "Source athlon.vehicle_clusters is getting stale",
        "Source athlon.vehicles is getting stale",
        "Source athlon.vehicles__options is getting stale",
    ]

    write_state(raw_db, state, now - timedelta(hours=3))
    with pytest.raises(TransformError) as failure:
        check_source_freshness(settings)
    message = str(failure.value)
    assert message.startswith("Source data is too old")
    for table in ("vehicle_clusters", "vehicles", "vehicles__options"):
        assert f"athlon.{table} (last loaded " in message
    assert "180 min ago" in message


def test_docs_site_is_generated_and_served_over_http(settings, raw_db, tmp_path):
    site = generate_docs(settings, output_dir=tmp_path / "site")

    assert sorted(path.name for path in site.iterdir()) == [
        "catalog.json",
        "index.html",
        "manifest.json",
    ]
    server = docs_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/index.html"
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    # The static page embeds the manifest: models, their grain and the lineage.
    assert "One row per vehicle per availability window" in page
    assert "snap_vehicles" in page
    assert "vehicles_to_notify" in page
    # The overview page is the project's own, not dbt's default welcome.
    overview = json.loads((site / "manifest.json").read_text())["docs"][
        "doc.athlon_flex.__overview__"
    ]["block_contents"]
    assert overview.startswith("# Athlon Flex notifier: the showroom's history")
    assert "Welcome to the auto-generated documentation" not in overview
    assert "Athlon Flex notifier: the showroom" in page
