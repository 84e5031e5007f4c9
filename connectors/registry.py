"""The connector registry: each platform is declared once, in its connector module.

A connector module (``connectors/<name>.py``) declares ``PLATFORM = Platform(...)`` (or
``PLATFORMS = [...]`` for several, as connectors/team.py does). `platforms()` finds every
declaration by walking the ``connectors`` package with pkgutil, as Perceval's
``find_backends`` does, so the config schema (`agora.config`), the privacy lookups, the
demo and the tests all build their lists from here: adding a platform edits nothing
under ``agora/``. See docs/connectors.md, "Adding a source".
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import Connector

#: handle -> the account key the connector pseudonymises, or None (or HandleNotFound) when
#: the platform does not know the handle. Arguments: (source config, handle, logger).
Lookup = Callable[[Any, str, logging.Logger], "str | None"]

#: What a privacy request names -> the account keys the connector pseudonymises when it is an
#: id (no request made), or None when it is a handle for `Lookup`. Arguments: (the platform's
#: configured sources, what the request names). Raises AccountFormError for a form that can
#: never resolve. Called when the requests file is read, so it must not touch the network.
AccountKeys = Callable[[Sequence[Any], str], "set[str] | None"]


class AccountFormError(ValueError):
    """A privacy request names an account in a form the platform can never resolve.

    The message says what form is expected and never repeats the account.
    """


def is_ascii_id(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "１２３" and "²", which name no account."""
    return re.fullmatch(r"[0-9]+", text) is not None


def numeric_ids(sources: Sequence[Any], account: str) -> set[str] | None:
    """The default: a numeric id is the key itself (GitHub, Discourse, X, ...); anything else is a handle."""
    return {account} if is_ascii_id(account) else None


def instance_ids(
    platform: str, instance_of: Callable[[Any], str], account_key: Callable[[str, str], str | None]
) -> AccountKeys:
    """For platforms whose numeric ids are local to an instance (Mastodon, GitLab):
    ``<instance>:<id>`` as given, or a bare id when exactly one source of the platform is
    configured (it can only mean that instance)."""

    def keys(sources: Sequence[Any], account: str) -> set[str] | None:
        m = re.fullmatch(r"([A-Za-z0-9.-]+):([0-9]+)", account)
        if m:
            return {account_key(m.group(1).lower(), m.group(2))}
        if not is_ascii_id(account):
            return None
        if len(sources) != 1:
            raise AccountFormError(
                f"a {platform} id is local to an instance; write it as <instance>:<id> "
                f"({len(sources)} {platform} sources are configured)"
            )
        return {account_key(instance_of(sources[0]), account)}

    return keys


@dataclass(frozen=True)
class Platform:
    """Everything Agora needs to know about one platform, in one place."""

    #: The source ``type`` in agora.yml, and the ``platform`` column of every landed row.
    name: str
    #: Its agora.yml block: a pydantic model with ``type: Literal[name]`` and described fields.
    source: type
    #: The Connector subclass that extracts it (its ``fields_read`` and ``drop_reasons``, each
    #: reason with its plain-language wording, say what it reads and drops).
    connector: type[Connector]
    #: Its source config -> what the public notice (`agora notice`) says it reads there, as a
    #: phrase: "public posts tagged #example on fosstodon.org".
    describe: Callable[[Any], str]
    #: Team-written files (survey, feedback, ...): no accounts, title/text kept.
    team: bool = False
    #: How a privacy request's handle (``@name``) becomes an account key; None: ids only.
    lookup: Lookup | None = None
    #: Which privacy requests name an id, and the keys they mean (no lookup needed).
    account_keys: AccountKeys = numeric_ids
    #: Module of its demo generator (``agora.demo.<name>``), or None when the demo leaves it out.
    demo: str | None = None
    #: ``module:function`` returning its `fault_matrix.Target` (recorded responses; tests only).
    fault_target: str | None = None


def _declarations(module: Any) -> list[Platform]:
    found = getattr(module, "PLATFORMS", None) or ([module.PLATFORM] if hasattr(module, "PLATFORM") else [])
    return [p for p in found if isinstance(p, Platform)]


@cache
def platforms() -> tuple[Platform, ...]:
    """Every declared platform, ordered by name (discovery imports each connector module once)."""
    import connectors

    found: dict[str, Platform] = {}
    for info in pkgutil.iter_modules(connectors.__path__, "connectors."):
        if info.ispkg:
            continue
        for p in _declarations(importlib.import_module(info.name)):
            if p.name in found:
                raise RuntimeError(f"platform {p.name!r} is declared twice ({info.name})")
            found[p.name] = p
    return tuple(sorted(found.values(), key=lambda p: p.name))


def platform(name: str) -> Platform:
    for p in platforms():
        if p.name == name:
            return p
    raise KeyError(f"no connector declares platform {name!r}")


def names(*, team: bool | None = None) -> tuple[str, ...]:
    """Platform names; `team` True/False keeps only team-written / account-bearing ones."""
    return tuple(p.name for p in platforms() if team is None or p.team == team)
