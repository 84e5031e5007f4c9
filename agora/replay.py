"""A local HTTP server on 127.0.0.1 that replays recorded API responses.

Used by the offline demo (the demo community served as platform APIs) and by the tests
(recorded responses, plus injected faults). Connectors talk to it over real HTTP, so
nothing of ours is patched.

A route is a path plus (optionally) the exact query; its value is a list of responses
served in order, the last one repeating. ``{base_url}`` in a body or header is replaced
by the server's own URL, so recorded ``Link``/``next`` URLs point back here.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (timeouts)
    fault: str | None = None  # "reset": close without answering; "truncate": half the body


def _query_key(query: str | dict | list | None) -> tuple | None:
    if query is None:
        return None
    if isinstance(query, str):
        pairs = parse_qsl(query, keep_blank_values=True)
    elif isinstance(query, dict):
        pairs = [(k, str(v)) for k, v in query.items()]
    else:
        pairs = [(k, str(v)) for k, v in query]
    return tuple(sorted(pairs))


class ReplayServer:
    """Serve routes until stopped. Use as a context manager."""

    def __init__(self, routes: dict | None = None, host: str = "127.0.0.1", port: int = 0):
        self._routes: dict[tuple[str, tuple | None], list[Reply]] = {}
        self._served: dict[tuple[str, tuple | None], int] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path?query, headers)
        self._lock = threading.Lock()
        for (path, query), replies in (routes or {}).items():
            self.add(path, replies, query=query)
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, replies: Reply | list[Reply] | Any, query: str | dict | list | None = None) -> None:
        """Register replies for a path (and exact query, or any query when None)."""
        if not isinstance(replies, list) or (replies and not isinstance(replies[0], Reply)):
            replies = [replies]
        replies = [r if isinstance(r, Reply) else Reply(body=r) for r in replies]
        with self._lock:
            self._routes[(path, _query_key(query))] = replies

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_reply(self, path: str, query: str) -> Reply | None:
        with self._lock:
            for key in ((path, _query_key(query)), (path, None)):
                replies = self._routes.get(key)
                if replies:
                    i = self._served.get(key, 0)
                    self._served[key] = i + 1
                    return replies[min(i, len(replies) - 1)]
        return None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without TCP_NODELAY every request on a kept-alive connection waits ~40 ms
            # (Nagle + delayed ACK): 90 s instead of 4 s for the demo forum.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                server.requests.append((self.path, dict(self.headers)))
                reply = server._next_reply(parts.path, parts.query)
                if reply is None:
                    reply = Reply(404, {"error": f"no recorded response for {parts.path}"})
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.fault == "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                body = reply.body
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                    ctype = "application/json; charset=utf-8"
                elif isinstance(body, str):
                    data, ctype = body.encode(), "application/json; charset=utf-8"
                elif body is None:
                    data, ctype = b"", "application/json"
                else:
                    data, ctype = body, "application/octet-stream"
                data = data.replace(b"{base_url}", server.url.encode())
                length = len(data)
                if reply.fault == "truncate":
                    data = data[: max(1, len(data) // 2)]
                    length = len(data)
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(length))
                for k, v in reply.headers.items():
                    self.send_header(k, v.replace("{base_url}", server.url))
                self.end_headers()
                self.wfile.write(data)

        return Handler
