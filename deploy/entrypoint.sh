#!/bin/sh
# Entry point of the Agora image. `check-secrets` only checks the environment; `init`
# prepares a deployment once (idempotent); anything else is an `airflow` subcommand
# (api-server, scheduler, celery worker, ...). Every command refuses to start with a
# placeholder secret from .env.example (generate real ones: deploy/generate_env.py).
set -eu

refuse_placeholders() {
    # Every secret in .env.example is a `change-me...` placeholder; a URL may embed one.
    bad=$(env | grep -E '^[A-Za-z0-9_]+=.*change-me' | cut -d= -f1 | sort | tr '\n' ' ' || true)
    if [ -n "$bad" ]; then
        echo "agora: refusing to start: placeholder secret from .env.example in: $bad" >&2
        echo "agora: generate real values with: python deploy/generate_env.py (docs/operations.md, Secrets)" >&2
        exit 78
    fi
    if [ -n "${AGORA_PSEUDONYM_KEY+x}" ] && [ "${#AGORA_PSEUDONYM_KEY}" -lt 32 ]; then
        echo "agora: refusing to start: AGORA_PSEUDONYM_KEY is shorter than 32 characters;" \
            "generate it with: python deploy/generate_env.py" >&2
        exit 78
    fi
}

refuse_placeholders
case "${1:-}" in
check-secrets)
    echo "agora: no placeholder secrets"
    exit 0
    ;;
init)
    airflow db migrate
    airflow pools set agora_warehouse 1 "DuckDB allows one writer: warehouse writers queue here"
    # The first admin of the FAB auth manager (password from the environment, not argv).
    python "$(dirname "$0")/airflow_admin.py"
    # The landing, state and quarantine locations (on S3: the bucket) exist before any task runs.
    python -c 'import fsspec
from agora.config import load_config
cfg = load_config()
for kind in ("landing", "state", "quarantine"):
    fs, path = fsspec.core.url_to_fs(cfg.path(kind))
    fs.makedirs(path, exist_ok=True)'
    # Publisher + read-only reader roles and the serving database (agora.publish_pg).
    python -m agora.publish_pg provision
    # The manifest Cosmos renders agora_transform from (also baked into the image).
    python -m agora.warehouse parse
    echo "agora init done"
    exit 0
    ;;
esac

exec airflow "$@"
