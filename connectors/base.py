"""What every connector is: a generator of public `RawEvent`s for a time window.

A connector reads only the fields it declares, decides at the edge what is not public
(and counts it in `drops` by reason, never by id), and knows nothing about landing,
pseudonyms or Airflow: `agora.extract` does that, the same way for every source.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from agora.envelope import RawEvent, Rejected

#: Exceptions a malformed item raises while it is parsed: the item is quarantined, the run goes on.
ITEM_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError, OverflowError, OSError)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no platform Agora reads holds older records
FUTURE_SKEW = timedelta(hours=1)  # a server clock this far ahead is tolerated


class ImplausibleTime(ValueError):
    """A timestamp no real record has (before 2000, in the future, without a zone)."""


def plausible(dt: datetime) -> datetime:
    """`dt` (aware) in UTC, or ImplausibleTime: checked before any window filter, so an
    absurd timestamp is quarantined instead of silently falling outside every window."""
    if not isinstance(dt, datetime) or dt.tzinfo is None:
        raise ImplausibleTime("timestamp without a time zone")
    dt = dt.astimezone(UTC)
    if dt < EARLIEST:
        raise ImplausibleTime(f"timestamp before {EARLIEST:%Y-%m-%d}")
    if dt > datetime.now(UTC) + FUTURE_SKEW:
        raise ImplausibleTime("timestamp in the future")
    return dt


def parse_iso(value: object) -> datetime:
    """An ISO 8601 timestamp from an API (``...Z`` or an offset; naive means UTC), checked
    plausible. Raises ValueError (or TypeError for a non-string) on anything else."""
    if not isinstance(value, str):
        raise TypeError(f"timestamp is a {type(value).__name__}, not a string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return plausible(dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt)


def parse_epoch(value: object) -> datetime:
    """Unix seconds (an int, or a string of ASCII digits), checked plausible."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"timestamp is a {type(value).__name__}, not Unix seconds")
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,12}", value):
        raise ValueError("timestamp is not Unix seconds")
    return plausible(datetime.fromtimestamp(int(value), tz=UTC))


def as_int(value: object) -> int:
    """A platform id or number: an int, or a string of ASCII digits (never a bool, a float,
    "１２３" or "123\u200b", which int() would accept or mangle)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"a {type(value).__name__} where a number belongs")
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]{1,20}", value):
        raise ValueError("not an ASCII number")
    number = int(value)
    if not -(2**63) < number < 2**63:
        raise ValueError("number out of range")
    return number


def item_error(what: str, error: Exception) -> str:
    """A quarantine reason: what failed and why, never the offending value (it may be personal)."""
    if isinstance(error, ImplausibleTime):
        return f"{what}: {error}"
    return f"{what}: malformed item ({type(error).__name__})"


class Window:
    """The half-open extract window [since, until); `since` None means from the beginning."""

    def __init__(self, since: datetime | None, until: datetime):
        self.since, self.until = since, until

    def __contains__(self, t: datetime) -> bool:
        return (self.since is None or t >= self.since) and t < self.until


class Connector:
    platform: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    #: Each reason this connector drops items for -> its plain-language wording in the public
    #: notice (`agora notice`), e.g. ``{"not_public": "posts that are not public"}``.
    drop_reasons: ClassVar[Mapping[str, str]] = {}
    #: Fields of the platform's payload the connector reads; all else is ignored.
    fields_read: ClassVar[tuple[str, ...]] = ()
    #: The canonical form of the platform's account ids (a regex, matched whole, ASCII only).
    #: An id in any other form ("１２３", "123\u200b", "0123") is rejected, not normalised:
    #: it would pseudonymise apart from the same account's canonical id.
    account_id_pattern: ClassVar[str | None] = None

    @classmethod
    def account_problem(cls, account_id: str | None) -> str | None:
        """Why an account id cannot be pseudonymised as is, or None when it is canonical (or absent)."""
        if account_id is None:
            return None
        if not isinstance(account_id, str) or not account_id.isascii() or not account_id.isprintable():
            return "account id is not printable ASCII"
        if cls.account_id_pattern and not re.fullmatch(cls.account_id_pattern, account_id):
            return "account id is not in the platform's canonical form"
        return None

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


class HandleNotFound(LookupError):
    """A privacy request's handle that the platform does not know (renamed or deleted)."""


def connector_class(source_type: str) -> type[Connector]:
    """The connector declared for a source type (connectors/registry.py)."""
    from connectors.registry import platform

    return platform(source_type).connector
