"""From what a request names (an id or a handle) to the account keys the connectors pseudonymise.

Which forms are ids, and how a handle is looked up, each connector module declares
(``Platform.account_keys``, ``Platform.lookup``); lookups run with the handle redacted
from every log record.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from urllib.parse import quote

from agora.config import AgoraConfig, ConfigError
from agora.privacy.requests import Request, sources_of
from connectors.base import HandleNotFound
from connectors.registry import AccountFormError
from connectors.registry import platform as _platform


class _Redact(logging.Filter):
    """Replaces the handles being looked up in any record of the loggers it sits on.

    urllib3 logs request URLs at DEBUG and our HTTP client logs paths on retries; a handle
    is in the URL of a lookup, so while one runs those records are scrubbed (not dropped:
    a retry warning still matters).
    """

    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = sorted({s for x in secrets for s in (x, quote(x, safe=""), quote(x))}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        redacted = msg
        for s in self.secrets:
            redacted = redacted.replace(s, "<redacted>")
        if redacted != msg:
            record.msg, record.args = redacted, ()
        return True


_LOOKUP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "tweepy.client", "agora.privacy.lookup")


@contextlib.contextmanager
def _redacted(*secrets: str) -> Iterator[logging.Logger]:
    flt = _Redact(set(secrets))
    loggers = [logging.getLogger(n) for n in _LOOKUP_LOGGERS]
    for lg in loggers:
        lg.addFilter(flt)
    try:
        yield logging.getLogger("agora.privacy.lookup")
    finally:
        for lg in loggers:
            lg.removeFilter(flt)


def account_keys(cfg: AgoraConfig, req: Request) -> tuple[set[str], str | None]:
    """(the keys connectors pseudonymise for this account, why not if it cannot be resolved).

    What names an id, and the keys it means, the platform declares (``Platform.account_keys``);
    a handle is looked up in every configured source of its platform (``Platform.lookup``:
    a forum's or an instance's own ids differ). A leading ``@`` marks a handle even when it
    is all digits. A 404 in one source means the account is not there; any other failure
    leaves the request pending, because an erasure must not be done by halves.
    """
    account, platform = req.account, req.platform
    declared = _platform(platform)
    if not account.startswith("@"):
        try:
            keys = declared.account_keys(sources_of(cfg, platform), account)
        except AccountFormError as e:
            return set(), str(e)
        if keys is not None:
            return keys, None
    if declared.lookup is None:
        return set(), f"{platform} has no handle lookup; give the account id"
    handle = account.removeprefix("@")
    sources = sources_of(cfg, platform)
    if not sources:
        return set(), f"no configured {platform} source to look the handle up in; give the numeric id"
    found: set[str] = set()
    with _redacted(handle, account) as lg:
        for src in sources:
            try:
                key = declared.lookup(src, handle, lg)
            except HandleNotFound:
                continue
            except ConfigError as e:
                return set(), f"{src.name}: cannot look the handle up: {e}"
            except Exception as e:  # noqa: BLE001 - any failure leaves the request pending
                status = getattr(e, "status", None) or getattr(getattr(e, "response", None), "status_code", None)
                if status == 404:
                    continue
                return set(), f"{src.name}: handle lookup failed ({f'HTTP {status}' if status else type(e).__name__})"
            if key is not None:
                found.add(key)
    if not found:
        names = ", ".join(s.name for s in sources)
        return set(), f"handle not found in {names} (renamed or deleted? give the numeric id)"
    return found, None
