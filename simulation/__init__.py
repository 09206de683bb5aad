"""Apart from the runtime: the simulated showroom API (`fake_api`), the offline demo
(`demo`) and the benchmark (`bench`). Only the CLI commands that start them import
this package; nothing the watcher runs in production does.
"""
