"""The email on a 400 px wide phone screen: rendered by headless Chromium, nothing
may stick out to the right (no sideways scrolling, no cut-off column).

Chromium is a test requirement (Debian `chromium`; .ci/run installs it): without it
this test fails and says so, it does not skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape
from pathlib import Path

import pytest

from notifier.render import render_email
from tests.notifier.conftest import window

PHONE_WIDTH = 400

# The email in a frame exactly as wide as the phone (Chromium's headless window is
# at least 500 px wide), measured after layout; the result is written into the
# page, which `--dump-dom` prints.
WRAPPER = """<!DOCTYPE html>
<html><body style="margin:0">
<iframe id="email" style="width:{width}px; height:900px; border:0" srcdoc="{email}">
</iframe>
<script>
document.getElementById("email").addEventListener("load", (event) => {{
  const doc = event.target.contentDocument;
  const width = doc.documentElement.clientWidth;
  const wide = [...doc.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 0.5)
    .map(el => el.tagName + "." + (el.className || "") + ": "
         + Math.round(el.getBoundingClientRect().right));
  const out = document.createElement("pre");
  out.id = "measure";
  out.textContent = JSON.stringify({{
    viewport: width,
    scrollWidth: doc.documentElement.scrollWidth,
    wide: wide,
  }});
  document.body.appendChild(out);
}});
</script>
</body></html>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed (apt-get install chromium; .ci/run does): "
            "the phone layout cannot be checked"
        )
    return found


def _measure(html: str, tmp_path: Path) -> dict:
    page = tmp_path / "email.html"
    page.write_text(
        WRAPPER.format(width=PHONE_WIDTH, email=escape(html, quote=True)),
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # the tests run as root in CI
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,1000",
            # Pictures come from the showroom's servers: none in tests.
            "--blink-settings=imagesEnabled=false",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    match = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, re.S)
    assert match, f"Chromium printed no measurement: {done.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_an_email_fits_a_400_px_phone_screen(tmp_path):
    since = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    rows = [
        window(
            "v1",
            type="Long Range All-Wheel-Drive Performance Launch Edition",
            license_plate="AB-123-C",
        ),
        {
            **window(
                "v2",
                make="Mercedes-Benz",
                model="EQE SUV 350+ Business Solution AMG Line",
                price_per_month_in_euro=Decimal("489"),
                net_cost_per_month_in_euro=Decimal("1234567.89"),
            ),
            "alert_kind": "price_drop",
            "previous_price_per_month_in_euro": Decimal("539"),
            "lease_speed_median_hours": 3,
        },
        {
            **window("v3", make="Kia", model="EV6", available_since=since),
            "alert_kind": "back",
            "left_at": since - timedelta(days=2),
        },
        # API text without a place to break must wrap, not widen the page.
        window("v4", make="BYD", model="Seal", type="X" * 120, color="Y" * 80),
    ]
    email = render_email(
        rows,
        image_width=600,  # wider than the phone: the picture must shrink
        timezone="Europe/Amsterdam",
        left_out=[window(f"r{n}", make="Volkswagen", model="ID.7") for n in range(3)],
        sender="notifier-with-a-rather-long-address@example.org",
        recipient="anna.van.der.berg-de-vries@example.nl",
    )

    measured = _measure(email.html, tmp_path)

    assert measured["viewport"] == PHONE_WIDTH
    assert measured["wide"] == []
    assert measured["scrollWidth"] <= PHONE_WIDTH
