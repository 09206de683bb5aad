"""The loader: the Athlon Flex showroom API → PostgreSQL schema `raw`, with dlt.

Entry point: `loader.pipeline.load(settings, *, allow_shrink=False) -> LoadSummary`.

Modules, in the order the data passes them:
- `constants` endpoints, parameter values, datasets, showroom URL;
- `http`      httpx client, shared concurrency limit, timeouts, tenacity retries;
- `account`   anonymous or member login, profile parameters, tax group cookies;
- `shapes`    API JSON → rows, each table's declared columns, the loader's bounds;
- `source`    the dlt source that fetches: clusters, cars (per cluster), details
              (per new or changed car), the last two in dlt's thread pool;
- `publish`   `raw` from dlt's landing dataset, every table in one transaction;
- `pipeline`  `load()`: extract, check, normalize and load to landing, publish.

Fail closed per showroom, tolerant per car. A request that fails for good, a cluster
whose list does not account for its `vehicleCount`, an empty showroom or a large
shrink raise `LoadError` before dlt sees a row; dlt then lands the run in
`raw_landing`, and only a complete landing is published to `raw`, all tables in one
transaction, so `raw` keeps its last complete snapshot whatever fails. One car's odd
field, odd details or unusable id never fails the load: that value is null (or that
car skipped, for an id) with one warning naming the car.

Schema contract (what happens when the API changes):
- New API fields are *not* loaded: `shapes` maps a fixed list of keys per endpoint, and
  the run logs the unknown keys once ("API fields not loaded: ...") so someone can
  decide to add them (a column in `shapes`, and in docs/architecture.md).
- dlt runs with columns="freeze" and data_type="freeze": a column or type that the
  resources do not declare fails the run in extract/normalize, before the load, instead
  of adding a column or a `__v_*` variant column. Since `shapes` converts every value
  to its declared type (or null), this only fires on a loader bug.

Importing this package configures dlt for the process through its environment
variables: no telemetry (no network besides the API and PostgreSQL), no Airflow
Variable lookups for configuration (the loader passes everything explicitly, and
those lookups cost a database query each), no compression of the short-lived files
in the run's temporary working directory.
"""

import os

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
os.environ["PROVIDERS__ENABLE_AIRFLOW_SECRETS"] = "false"
os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"
