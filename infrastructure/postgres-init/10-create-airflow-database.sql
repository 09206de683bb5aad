-- Airflow's metadata database, next to the project's own (POSTGRES_DB) in the same
-- server but separate from it, so `airflow db clean` or a reset of Airflow never
-- touches the showroom's history.
--
-- The postgres image runs this once, when it initialises an empty volume. A volume
-- that already existed (the old tool's, say) is covered by the `airflow-init`
-- service, which creates the database when it is missing
-- (infrastructure/airflow_bootstrap.py ensure-db).
create database airflow;
