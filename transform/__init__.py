"""The transform stage: the dbt project (repo root) run in this process.

`runner.build` is `dbt build` (snapshots, models, data tests); `runner` also runs the
unit tests, the source freshness check and the docs site. Imports only the foundation.
"""
