"""What every connector is: a generator of public `RawEvent`s for a time window.

A connector reads only the fields it declares, decides at the edge what is not public
(and counts it in `drops` by reason, never by id), and knows nothing about landing,
pseudonyms or Airflow: `agora.extract` does that, the same way for every source.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any, ClassVar, Iterator

from agora.envelope import RawEvent, Rejected


class Connector:
    platform: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    #: Reasons this connector drops items for, documented in docs/connectors.md.
    drop_reasons: ClassVar[tuple[str, ...]] = ()
    #: Fields of the platform's payload the connector reads; all else is ignored.
    fields_read: ClassVar[tuple[str, ...]] = ()

    def __init__(self, source: Any, *, root: Any = None, log: logging.Logger | None = None):
        self.source = source
        self.root = root  # directory of agora.yml, for file sources
        self.log = log or logging.getLogger(f"agora.connectors.{self.platform}")
        self.drops: Counter[str] = Counter()

    def drop(self, reason: str) -> None:
        self.drops[reason] += 1

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        """Yield public records with since <= occurred_at (or last activity) < until."""
        raise NotImplementedError


def connector_class(source_type: str) -> type[Connector]:
    """Import lazily: a DAG or CLI call pays only for the connector it runs."""
    import importlib

    module, cls = _REGISTRY[source_type]
    return getattr(importlib.import_module(module), cls)


_REGISTRY: dict[str, tuple[str, str]] = {
    "discourse": ("connectors.discourse", "DiscourseConnector"),
    "github": ("connectors.github", "GithubConnector"),
    "mediawiki": ("connectors.mediawiki", "MediawikiConnector"),
    "stackexchange": ("connectors.stackexchange", "StackExchangeConnector"),
    "x": ("connectors.x", "XConnector"),
    "mastodon": ("connectors.mastodon", "MastodonConnector"),
    "survey": ("connectors.team", "SurveyConnector"),
    "feedback_log": ("connectors.team", "FeedbackConnector"),
    "learnings": ("connectors.team", "LearningsConnector"),
    "team_activity": ("connectors.team", "TeamActivityConnector"),
}
