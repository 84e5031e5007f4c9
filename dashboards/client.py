"""Talk to Superset 6.1's REST API: log in, import the bundle, look things up, run SQL.

Built on the ``superset-client`` package (1.0.0) that our users named, used where it
works against 6.1: login + CSRF (its authenticated ``requests`` session), ``find`` /
``get`` on dashboards, charts, datasets and databases, and ``run`` for SQL Lab.
Where it does not, we use plain ``requests`` calls on that same session:
``assets.import_file`` opens the bundle by its bare file name (relative to the
current directory) and never closes it, so the import is posted here. The full
list of what works and what does not is in ``docs/dashboards.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import requests

# superset-client authenticates through requests-oauthlib, which refuses plain http
# unless told otherwise; Superset only listens on 127.0.0.1 here.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

from supersetapiclient.client import SupersetClient  # noqa: E402
from supersetapiclient.exceptions import BadRequestError, ComplexBadRequestError  # noqa: E402


class SupersetError(RuntimeError):
    """Superset answered with an error; the message carries its own explanation."""


class SupersetApi:
    """An authenticated session on one Superset instance."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 120) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.client = SupersetClient(host=self.base_url, username=username, password=password)
        try:
            self.session: requests.Session = self.client.session  # logs in, fetches the CSRF token
        except (BadRequestError, ComplexBadRequestError, requests.HTTPError) as e:
            raise SupersetError(f"login as {username!r} failed: {e}") from None

    def import_bundle(self, bundle: Path) -> None:
        """Import (and overwrite) every asset of a bundle made by ``bundle.build_bundle``."""
        with bundle.open("rb") as fh:
            r = self.session.post(
                f"{self.base_url}/api/v1/assets/import/",
                files={"bundle": (bundle.name, fh, "application/zip")},
                data={"passwords": "{}"},
                timeout=self.timeout,
            )
        _raise_for(r, "assets import")

    def dashboard(self, slug: str) -> dict[str, Any]:
        """The dashboard with this slug: id, title, position and metadata."""
        found = self.client.dashboards.find(slug=slug)
        if len(found) != 1:
            raise SupersetError(f"expected one dashboard with slug {slug!r}, found {len(found)}")
        d = found[0]
        d.fetch()
        return {"id": d.id, "title": d.dashboard_title, "position": d.position_json, "metadata": d.json_metadata}

    def count(self, resource: str) -> int:
        """How many dashboards / charts / datasets / databases / saved_queries exist."""
        return getattr(self.client, resource).count()

    def database_id(self, database_name: str) -> int:
        found = self.client.databases.find(database_name=database_name)
        if len(found) != 1:
            raise SupersetError(f"expected one database named {database_name!r}, found {len(found)}")
        return int(found[0].id)

    def sql(self, database_id: int, sql: str) -> list[dict[str, Any]]:
        """Run a query through SQL Lab, as an analyst would, and return its rows."""
        try:
            _, rows = self.client.run(database_id=database_id, query=sql)
        except (BadRequestError, ComplexBadRequestError) as e:
            raise SupersetError(f"SQL Lab: {_messages(e)}") from None
        return rows


def _messages(e: Exception) -> str:
    errors = getattr(e, "errors", None) or [getattr(e, "message", None) or str(e)]
    return "; ".join(err.get("message", str(err)) if isinstance(err, dict) else str(err) for err in errors)


def _raise_for(r: requests.Response, what: str) -> None:
    if r.ok:
        return
    try:
        detail: Any = r.json()
    except ValueError:
        detail = r.text[:500]
    raise SupersetError(f"{what}: HTTP {r.status_code}: {json.dumps(detail)[:1500]}")
