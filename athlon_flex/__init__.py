"""The foundation every other package stands on: settings, database, errors.

Floors (docs/architecture.md; tests/test_layers.py enforces them by reading imports):
- `athlon_flex`  foundation: `settings`, `database`, `errors`; imports no other package;
- `loader`, `transform`, `notifier`  the stages: import only the foundation;
- `watcher`, `dags`  the application (CLI, the cycle, alerts, the DAG): the stages and
  the foundation;
- `simulation`  the simulated showroom API, the demo and the benchmark, apart: the
  runtime never imports it, only the CLI commands that start it.
"""
