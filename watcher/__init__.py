"""The application: the CLI (`cli`), one full cycle under the pipeline lock (`cycle`)
and the alerts about the watcher itself (`alerts`). The Airflow DAG in dags/ calls the
same functions. Imports the stages and the foundation, nothing above.
"""
