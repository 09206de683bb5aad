"""The loader: the showroom API → PostgreSQL schema `raw`, with dlt; entry point
`loader.pipeline.load` (docs/architecture.md, "The loader"). Importing it configures
dlt for the process: no telemetry, no Airflow Variable lookups (each costs a query),
no compression of the run's short-lived files."""

import os

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
os.environ["PROVIDERS__ENABLE_AIRFLOW_SECRETS"] = "false"
os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"
