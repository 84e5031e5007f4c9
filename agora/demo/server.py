"""The demo's one local server: recorded routes plus handlers that answer from the community.

Most platform APIs page with query parameters that depend on the window asked for
(GitHub ``since``, MediaWiki ``rvstart``/``rvcontinue``, Stack Exchange ``min``/``page``,
X ``start_time``/``next_token``), so their answers cannot all be recorded up front: a
handler computes each answer from the in-memory community, as the real API would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from agora.replay import ReplayServer, Reply

#: handler(path, query params) -> a Reply, a JSON-able body, or None (not found).
Handler = Callable[[str, dict[str, str]], Any]


class DemoServer(ReplayServer):
    """A ReplayServer whose paths under a prefix are answered by a handler."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._handlers: list[tuple[str, Handler]] = []

    def handle(self, prefix: str, handler: Handler) -> None:
        self._handlers.append((prefix, handler))

    def _next_reply(self, path: str, query: str) -> Reply | None:
        for prefix, handler in self._handlers:
            if path.startswith(prefix):
                params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
                out = handler(path, params)
                if out is None:
                    return Reply(404, {"error": "not found"})
                return out if isinstance(out, Reply) else Reply(body=json.dumps(out, separators=(",", ":")))
        return super()._next_reply(path, query)


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (with Z or an offset) or epoch seconds, as the APIs' query parameters come."""
    if not value:
        return None
    if value.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(value), tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def link_next(path: str, params: dict[str, str], **changes: Any) -> dict[str, str]:
    """A ``Link: <...>; rel="next"`` header pointing back at this server."""
    query = urlencode({**params, **{k: str(v) for k, v in changes.items()}})
    return {"Link": f'<{{base_url}}{path}?{query}>; rel="next"'}
