"""Superset settings for Agora: local, read-only analytics on the serving database.

Every piece of state (SQLite metadata, secret key, logs) lives under
``AGORA_SUPERSET_HOME`` (default ``<repo>/.superset``, gitignored), so a checkout
never carries Superset state and a test can run a throwaway instance beside a
developer's one.
"""

from __future__ import annotations

import os
from pathlib import Path

_HOME = Path(os.environ.get("AGORA_SUPERSET_HOME", Path(__file__).resolve().parents[1] / ".superset"))
_HOME.mkdir(parents=True, exist_ok=True)

DATA_DIR = str(_HOME)
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}?check_same_thread=false"
# run.sh writes the key once (mode 600); it signs sessions and encrypts stored connection params.
SECRET_KEY = (_HOME / "secret_key").read_text().strip()

APP_NAME = "Agora"
# Local single-host service: no CDN, no thumbnails, no Celery, no example data.
THUMBNAILS = False
FEATURE_FLAGS = {
    "DASHBOARD_RBAC": False,
    "ENABLE_TEMPLATE_PROCESSING": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
}
# SQL Lab runs synchronously in the web worker; the marts are small.
SQLLAB_TIMEOUT = 60
SQL_MAX_ROW = 50_000
# Flask-Limiter defaults to in-memory storage and warns; say so explicitly.
RATELIMIT_STORAGE_URI = "memory://"
# Only 127.0.0.1 is served, over plain http.
TALISMAN_ENABLED = False
WTF_CSRF_ENABLED = True
SESSION_COOKIE_SECURE = False
# The headline cards (a Handlebars chart) are styled with classes and one <style>
# block; everything else of the default (GitHub) sanitisation schema stays. Only
# people who may edit charts can write such markup, and ours is reviewed as code.
HTML_SANITIZATION_SCHEMA_EXTENSIONS = {
    "attributes": {"div": ["className"], "span": ["className"]},
    "tagNames": ["style"],
}


# SQLite metadata: WAL lets the web workers read while one writes (no "database is
# locked" under a dashboard's burst of requests). During the one-off bootstrap,
# which runs ~300 migrations, fsync after every statement is pure cost.
def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        bootstrapping = os.environ.get("AGORA_SUPERSET_BOOTSTRAP") == "1"
        cursor.execute(f"PRAGMA synchronous={'OFF' if bootstrapping else 'NORMAL'}")
        cursor.close()


def _install_sqlite_pragmas() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


_install_sqlite_pragmas()
