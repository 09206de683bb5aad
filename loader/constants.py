"""Constants of the showroom API and of the load (configurable values: Settings).
Endpoint and parameter names follow the public `athlon-flex-client`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DATASET_NAME = "raw"
# dlt lands here (and keeps each car's details for reuse); `loader.publish` copies.
LANDING_DATASET = "raw_landing"
LANDING_SUMMARIES = "vehicles"
LANDING_DETAILS = "vehicle_details"
LANDING_OPTIONS = "vehicle_details__options"
PIPELINE_NAME = "athlon_showroom"
SOURCE_NAME = "athlon_showroom"
CLUSTERS_TABLE = "vehicle_clusters"
VEHICLES_TABLE = "vehicles"
OPTIONS_TABLE = "vehicles__options"

CLUSTERS_ENDPOINT = "VehicleCluster"
VARIATIONS_ENDPOINT = "VehicleVariation"
DETAILS_ENDPOINT = "Vehicle"

# The only page id for which TaxRates answers; the client found it in the web app.
TAX_RATES_PAGE_ID = "4ecf5f24-8985-450a-915d-919aa7ffa9df"
SEGMENT = "Cars"
SORT_BY = "PriceInEuro"

# Links into the web app, as the client builds them (not from the API's URL: links
# stay real when the loader reads the simulated API).
SHOWROOM_URL = "https://flex.athlon.com/app/showroom"

PROJECT_URL = "https://github.com/AuckeBos/athlon-flex-notifier"
try:
    PROJECT_VERSION = version("athlon-flex-notifier")
except PackageNotFoundError:  # running from a checkout without an install
    PROJECT_VERSION = "0.0.0"
USER_AGENT = f"athlon-flex-notifier/{PROJECT_VERSION} (+{PROJECT_URL})"

# A longer Retry-After fails the run (closed); the next scheduled run asks again.
MAX_RETRY_AFTER_SECONDS = 60.0
# An answer larger than this (decompressed) fails the load: the real ones are a few
# MB, and a gzip bomb would otherwise take the machine's memory.
MAX_ANSWER_BYTES = 64 << 20
# Exponential back-off never waits longer than this between two tries.
MAX_BACKOFF_SECONDS = 30.0
# More asks of a cluster's list shorter than its vehicleCount before the load fails.
COMPLETENESS_RETRIES = 2
# A load's working directory, removed when it ends or by the next load if killed.
WORKDIR_PREFIX = "athlon-load-"
