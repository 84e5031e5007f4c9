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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import Connector

#: handle -> the account id the connector pseudonymises; raises HandleNotFound when the
#: platform does not know the handle. Arguments: (source config, handle, logger).
Lookup = Callable[[Any, str, logging.Logger], str]


@dataclass(frozen=True)
class Platform:
    """Everything Agora needs to know about one platform, in one place."""

    #: The source ``type`` in agora.yml, and the ``platform`` column of every landed row.
    name: str
    #: Its agora.yml block: a pydantic model with ``type: Literal[name]`` and described fields.
    source: type
    #: The Connector subclass that extracts it (its ``fields_read`` and ``drop_reasons`` say what it reads and drops).
    connector: type[Connector]
    #: Team-written files (survey, feedback, ...): no accounts, title/text kept.
    team: bool = False
    #: How a privacy request's handle (``@name``) becomes an account id; None: ids only.
    lookup: Lookup | None = None
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
