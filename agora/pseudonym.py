"""Keyed HMAC pseudonyms: the only form in which an account ever reaches disk."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(key: str, platform: str, account_id: str) -> str:
    """HMAC-SHA256 of ``platform:account_id``; platform in the message keeps platforms unlinkable."""
    return hmac.new(key.encode(), f"{platform}:{account_id}".encode(), hashlib.sha256).hexdigest()


class Pseudonymizer:
    """Pseudonymises one platform's accounts and flags staff, bots and opted-out accounts."""

    def __init__(
        self,
        key: str,
        platform: str,
        staff: set[str] = frozenset(),
        bots: set[str] = frozenset(),
        tombstones: set[str] = frozenset(),
    ):
        self._key = key
        self.platform = platform
        self._cache: dict[str, str] = {}
        # Staff/bot lists are raw ids from config: compare pseudonyms so raw ids never leave here.
        self.staff = {self(a) for a in staff}
        self.bots = {self(a) for a in bots}
        self.tombstones = set(tombstones)

    def __call__(self, account_id: str | None) -> str | None:
        if account_id is None or account_id == "":
            return None
        account_id = str(account_id)
        p = self._cache.get(account_id)
        if p is None:
            p = self._cache[account_id] = pseudonym(self._key, self.platform, account_id)
        return p
