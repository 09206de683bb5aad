"""The loader: the Athlon Flex showroom API → PostgreSQL schema `raw`, with dlt.

Entry point: `loader.pipeline.load(settings, *, allow_shrink=False) -> LoadSummary`.

Modules, in the order the data passes them:
- `settings`  constants: endpoints, parameter values, showroom URL, User-Agent;
- `http`      httpx client, shared concurrency limit, timeouts, retries, counters;
- `account`   anonymous or member login, profile parameters, tax group cookies;
- `previous`  the current `raw` snapshot: shrink baseline and reusable details;
- `shapes`    API JSON → validated rows, and each table's declared columns;
- `showroom`  fetches the whole showroom into validated rows (nothing written yet);
- `spool`     keeps those rows in a local file, not in memory, until dlt reads them;
- `source`    the dlt source and resources over those rows;
- `pipeline`  `load()`: fetch, check, hand to dlt, summarise.

Fail closed: every request, answer and plausibility check (empty showroom, shrink) is
done before dlt receives a row; a failure raises `LoadError` and `raw` keeps its last
complete snapshot. dlt then replaces each table with `insert-from-staging`: rows go to
`raw_staging` first, and each table (vehicles with their options) is swapped in one
transaction, so a reader never sees a half-loaded table.

Schema contract (what happens when the API changes):
- New API fields are *not* loaded: `shapes` maps a fixed list of keys per endpoint, and
  the run logs the unknown keys once ("API fields not loaded: ...") so someone can
  decide to add them (a column in `shapes`, and in docs/architecture.md).
- dlt runs with columns="freeze" and data_type="freeze": a column or type that the
  resources do not declare fails the run in extract/normalize, before the load, instead
  of adding a column or a `__v_*` variant column. Since `shapes` converts every value
  to its declared type (or fails naming the field), this only fires on a loader bug.
- A missing or null required field, or a value of the wrong JSON type, fails the run
  (`ShapeError`), naming endpoint, vehicle and field. Required fields' columns are
  NOT NULL; an optional text field that is "" lands as NULL (absent).

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
