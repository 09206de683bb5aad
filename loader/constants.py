"""Constants of the showroom API and of the load; configurable values live in Settings.

Endpoint names are relative to `Settings.athlon_api_url`. Parameter names and values
follow the public `athlon-flex-client`, which copied them from the web app.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# --- Where the data lands -----------------------------------------------------------
DATASET_NAME = "raw"
# dlt loads here first (and keeps each car's details here for reuse); one PostgreSQL
# transaction then publishes every raw table from it at once.
LANDING_DATASET = "raw_landing"
LANDING_SUMMARIES = "vehicles"
LANDING_DETAILS = "vehicle_details"
LANDING_OPTIONS = "vehicle_details__options"
PIPELINE_NAME = "athlon_showroom"
SOURCE_NAME = "athlon_showroom"
CLUSTERS_TABLE = "vehicle_clusters"
VEHICLES_TABLE = "vehicles"
OPTIONS_TABLE = "vehicles__options"

# --- Endpoints ----------------------------------------------------------------------
CLUSTERS_ENDPOINT = "VehicleCluster"
VARIATIONS_ENDPOINT = "VehicleVariation"
DETAILS_ENDPOINT = "Vehicle"
LOGIN_ENDPOINT = "MemberLogin"
PROFILE_ENDPOINT = "MemberProfile"
TAX_RATES_ENDPOINT = "TaxRates"

# The only page id for which TaxRates answers; the client found it in the web app.
TAX_RATES_PAGE_ID = "4ecf5f24-8985-450a-915d-919aa7ffa9df"
SEGMENT = "Cars"
SORT_BY = "PriceInEuro"
TAX_GROUP_COOKIE = "TaxGroup"
TAX_GROUP_LABEL_COOKIE = "TaxGroupLabel"

# --- Links into the web app (as the client builds them; not derived from the API URL,
# so links stay real when the loader reads a simulated API) ---------------------------
SHOWROOM_URL = "https://flex.athlon.com/app/showroom"

# --- Politeness -----------------------------------------------------------------------
PROJECT_URL = "https://github.com/AuckeBos/athlon-flex-notifier"
try:
    PROJECT_VERSION = version("athlon-flex-notifier")
except PackageNotFoundError:  # running from a checkout without an install
    PROJECT_VERSION = "0.0.0"
USER_AGENT = f"athlon-flex-notifier/{PROJECT_VERSION} (+{PROJECT_URL})"

# A Retry-After longer than this is not waited out inside a run: the run fails closed
# and the next scheduled run (10 minutes later) asks again.
MAX_RETRY_AFTER_SECONDS = 60.0
# Exponential back-off never waits longer than this between two tries.
MAX_BACKOFF_SECONDS = 30.0
# A cluster's VehicleVariation list shorter than its vehicleCount is asked for this
# many more times before the load fails.
COMPLETENESS_RETRIES = 2
# Temporary working directories of loads: "<prefix><random>", removed when the load
# ends, or by the next load when a killed one could not.
WORKDIR_PREFIX = "athlon-load-"
# Log progress of the detail calls at every this fraction of them.
PROGRESS_STEP = 0.10
