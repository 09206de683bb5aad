"""The loader: the Athlon Flex showroom API → PostgreSQL schema `raw`, with dlt.

Entry point: `loader.pipeline.load(settings, *, allow_shrink=False) -> LoadSummary`.
Modules, in the order the data passes them: `constants`; `http` (httpx, the run's
request limit, tenacity retries); `account` (anonymous or member, tax group);
`shapes` (the API's pydantic models, the loader's bounds, rows and column hints);
`source` (the dlt source that fetches); `publish` (`raw` from dlt's landing dataset
in one transaction); `pipeline` (`load()`).

Fail closed per showroom, tolerant per car: a request that fails for good, a cluster
whose list does not account for its `vehicleCount`, an empty showroom or a large
shrink raise `LoadError` and `raw` keeps its last complete snapshot; one car's odd
field, details or id is null (or that car skipped, for an id) with one warning.
New API fields are not loaded (the run names them once), and dlt's schema contract
freezes columns and types, so only a loader bug could add one.

Importing this package configures dlt for the process: no telemetry (no network but
the API and PostgreSQL), no Airflow Variable lookups (the loader passes everything
explicitly; each lookup costs a query), no compression of the run's short-lived files.
"""

import os

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
os.environ["PROVIDERS__ENABLE_AIRFLOW_SECRETS"] = "false"
os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"
