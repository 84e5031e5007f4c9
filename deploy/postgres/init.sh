#!/bin/bash
# Runs once, when the PostgreSQL volume is empty (postgres image's /docker-entrypoint-initdb.d).
# One server, separate databases and roles: Airflow metadata, Superset metadata, the dbt
# warehouse. The serving database and its publisher/reader roles are made by `agora init`
# (python -m agora.publish_pg provision), which also keeps them up to date.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v airflow_pw="$AIRFLOW_DB_PASSWORD" \
    -v superset_pw="$SUPERSET_DB_PASSWORD" \
    -v warehouse_pw="$AGORA_WAREHOUSE_PASSWORD" <<'SQL'
create role airflow login password :'airflow_pw';
create database airflow owner airflow;
create role superset login password :'superset_pw';
create database superset owner superset;
create role agora login password :'warehouse_pw';
create database warehouse owner agora;
SQL
