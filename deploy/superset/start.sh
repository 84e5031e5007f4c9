#!/bin/sh
# Superset in docker-compose: migrate its metadata, ensure the admin user, then serve.
set -eu
superset db upgrade
superset fab create-admin --username "$SUPERSET_ADMIN_USER" --password "$SUPERSET_ADMIN_PASSWORD" \
    --firstname Agora --lastname Admin --email "$SUPERSET_ADMIN_USER@localhost" || true  # exists already
superset init
exec gunicorn --bind 0.0.0.0:8088 --workers 2 --timeout 120 "superset.app:create_app()"
