#!/bin/sh
# Entry point of the Agora image. `init` prepares a deployment once (idempotent);
# anything else is an `airflow` subcommand (api-server, scheduler, celery worker, ...).
set -eu

if [ "${1:-}" = "init" ]; then
    airflow db migrate
    airflow pools set agora_warehouse 1 "DuckDB allows one writer: warehouse writers queue here"
    # Publisher + read-only reader roles and the serving database (agora.publish_pg).
    python -m agora.publish_pg provision
    # The manifest Cosmos renders agora_transform from (also baked into the image).
    python -m agora.warehouse parse
    echo "agora init done"
    exit 0
fi

exec airflow "$@"
