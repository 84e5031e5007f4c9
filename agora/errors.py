"""One error hierarchy: what a retry can fix and what it cannot.

A **permanent** error needs a person: a bad config, a private repository, a refused token,
data that breaks a contract. Retrying gives the same answer, so the DAGs fail such a task at
once (dags/agora_failures.py) and the CLI exits with it. A **transient** error (the network,
a rate limit, a server error, a locked file) may pass: Airflow retries it with backoff.

Errors of modules written before this hierarchy, or of libraries, are classified by
`is_permanent` instead of by their base class.
"""

from __future__ import annotations


class AgoraError(Exception):
    """Base of the errors Agora raises on purpose."""


class PermanentError(AgoraError):
    """Retrying cannot help: the message says what a person must change."""


class TransientError(AgoraError):
    """The same call may succeed later (network, rate limit, lock)."""


def is_permanent(exc: BaseException) -> bool:
    """Would retrying `exc` give the same answer? Unknown errors count as transient."""
    if isinstance(exc, PermanentError):
        return True
    if isinstance(exc, TransientError):
        return False
    from connectors.http import HttpError, LimitError, OriginError, RetryableHttpError

    if isinstance(exc, (LimitError, OriginError)):
        return True  # the source misbehaves (page cap, link loop, off-origin link)
    if isinstance(exc, RetryableHttpError):
        return False
    if isinstance(exc, HttpError):
        # A 4xx other than 429 is a refusal (bad token, no access, gone); no status means the
        # connection kept failing, which may pass.
        return exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
    kinds = _permanent_kinds()
    return isinstance(exc, kinds)


def _permanent_kinds() -> tuple[type[BaseException], ...]:
    """Errors defined elsewhere that a person must fix, imported lazily (GX, DP are heavy)."""
    found: list[type[BaseException]] = []
    for module, name in (
        ("agora.config", "ConfigError"),
        ("agora.privacy", "PrivacyInputError"),
        ("agora.dp", "BudgetRefused"),
        ("expectations.result", "ContractFailed"),
    ):
        try:
            found.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):  # pragma: no cover - a module renamed or removed
            continue
    return tuple(found)
