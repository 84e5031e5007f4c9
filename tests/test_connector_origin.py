"""Credentials stay on their origin: a next link or redirect to another scheme, host or port
is refused before any request, so no token or API key ever reaches a second server.

Every HTTP connector runs its recorded happy path against server A with its credentials
configured; A's first listing page is then rewritten to point elsewhere (a 302, and for the
Link-paging connectors an absolute ``Link: rel="next"``) at server B on another port. The
run must fail with a clear error naming the refusal, B must see no request at all, A must
have received the credentials (so the test proves they were configured), and nothing lands.
"""

from __future__ import annotations

import pytest
from fault_matrix import FaultServer, Target, targets, window_of
from test_faults import configure, serve

from agora.extract import run_extract
from agora.landing import landing_files, read_state
from agora.replay import ReplayServer, Reply
from connectors.http import HttpError

SECRET = "SECRET-TOKEN-3f9a1c"
#: The source keys that name a credential's environment variable, in the order tried.
CREDENTIAL_KEYS = ("bearer_token_env", "key_env", "token_env")


def credential_settings(t: Target) -> dict[str, str]:
    """Configure the platform's credential (every registered connector has one kind or another)."""
    from connectors.registry import platform

    if t.credential is not None:
        return t.credential
    fields = platform(t.name).source.model_fields
    key = next(k for k in CREDENTIAL_KEYS if k in fields)
    return {key: "ORIGIN_TEST_TOKEN"}


TARGETS = targets()
LINK_PAGED = {"github", "mastodon"}


def _carries_secret(request: tuple[str, dict[str, str]]) -> bool:
    path, headers = request
    return SECRET in path or any(SECRET in v for v in headers.values())


def _run_pointing_at(t: Target, workdir, monkeypatch, rewrite) -> tuple[Exception, FaultServer, ReplayServer]:
    monkeypatch.setenv("ORIGIN_TEST_TOKEN", SECRET)
    monkeypatch.setenv("ORIGIN_TEST_TOKEN_USERNAME", "system")
    since, until = window_of(t)
    with ReplayServer() as other, FaultServer() as server:
        other.add("/", Reply(200, []))
        routes = t.routes()
        first = routes[t.pages[0]][0]
        routes[t.pages[0]] = [rewrite(first, other.url)]
        # The app key joins the query (Stack Exchange), so the exact recorded query no longer matches.
        routes.setdefault((t.pages[0][0], None), routes[t.pages[0]])
        serve(server, routes)
        cfg = configure(t, workdir, server.url, credential_settings(t))
        with pytest.raises(HttpError) as failed:
            run_extract(cfg, t.name, since, until)
        assert landing_files(cfg.path("landing"), t.name) == []
        assert read_state(cfg.path("state"), t.name) == {}
        return failed.value, server, other


def _redirect(reply: Reply, elsewhere: str) -> Reply:
    return Reply(302, "", {"Location": f"{elsewhere}/stolen?page=2"})


def _link(reply: Reply, elsewhere: str) -> Reply:
    headers = {k: v for k, v in reply.headers.items() if k.lower() != "link"}
    headers["Link"] = f'<{elsewhere}/stolen?page=2>; rel="next"'
    return Reply(reply.status, reply.body, headers)


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: t.name)
def test_a_redirect_to_another_origin_is_refused_and_no_credential_leaves(t: Target, workdir, monkeypatch):
    error, server, other = _run_pointing_at(t, workdir, monkeypatch, _redirect)
    assert "refusing a redirect" in str(error) and other.url.rsplit(":", 1)[1] in str(error)
    assert SECRET not in str(error)
    assert other.requests == []  # not one request, so no token, reached the other server
    if credential_settings(t):  # the credential was configured and used
        assert any(_carries_secret(r) for r in server.requests)


@pytest.mark.parametrize("t", [t for t in TARGETS if t.name in LINK_PAGED], ids=lambda t: t.name)
def test_a_next_link_to_another_origin_is_refused(t: Target, workdir, monkeypatch):
    error, server, other = _run_pointing_at(t, workdir, monkeypatch, _link)
    assert "refusing a link" in str(error), error
    assert other.requests == []
    assert any(_carries_secret(r) for r in server.requests)


def test_a_github_next_link_into_another_repository_is_refused(workdir, monkeypatch):
    """Same host: the Link leads to a repository the public check never saw."""
    t = next(t for t in TARGETS if t.name == "github")

    def into_secret_repo(reply: Reply, _elsewhere: str) -> Reply:
        headers = {k: v for k, v in reply.headers.items() if k.lower() != "link"}
        headers["Link"] = '<{base_url}/repos/acme/secret-plans/issues?page=2>; rel="next"'
        return Reply(reply.status, reply.body, headers)

    error, server, _ = _run_pointing_at(t, workdir, monkeypatch, into_secret_repo)
    assert "outside the listing" in str(error), error
    assert not [p for p, _ in server.requests if "secret-plans" in p]


def test_same_origin_redirects_are_followed_with_credentials(workdir, monkeypatch):
    """The refusal is about the origin, not redirects: a 301 on the same host still works."""
    t = next(t for t in TARGETS if t.name == "github")
    monkeypatch.setenv("ORIGIN_TEST_TOKEN", SECRET)
    since, until = window_of(t)
    with FaultServer() as server:
        routes = t.routes()
        path, query = t.pages[0]
        routes[("/moved" + path, query)] = routes[t.pages[0]]
        routes[t.pages[0]] = [Reply(301, "", {"Location": "{base_url}/moved" + path + "?" + query if query else ""})]
        serve(server, routes)
        cfg = configure(t, workdir, server.url, {"token_env": "ORIGIN_TEST_TOKEN"})
        summary = run_extract(cfg, t.name, since, until)
    assert summary.landed > 0
    moved = [r for r in server.requests if r[0].startswith("/moved/")]
    assert moved and all(_carries_secret(r) for r in moved)
