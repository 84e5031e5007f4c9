"""Superset settings for the docker-compose deployment: PostgreSQL metadata, Redis cache.

Secrets come from the environment (the compose env file), never from this file. Agora's
marts are read through the read-only `agora_reader` role (see docs/operations.md).
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = f"postgresql+psycopg2://superset:{os.environ['SUPERSET_DB_PASSWORD']}@postgres:5432/superset"
_REDIS = f"redis://:{os.environ['REDIS_PASSWORD']}@redis:6379"
CACHE_CONFIG = {"CACHE_TYPE": "RedisCache", "CACHE_DEFAULT_TIMEOUT": 300, "CACHE_REDIS_URL": f"{_REDIS}/1"}
DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "agora_data_"}
RATELIMIT_STORAGE_URI = f"{_REDIS}/2"
APP_NAME = "Agora"
FEATURE_FLAGS = {"ALERT_REPORTS": False, "THUMBNAILS": False, "ENABLE_TEMPLATE_PROCESSING": False}
SQLLAB_TIMEOUT = 60
