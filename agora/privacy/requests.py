"""The requests file: one row per opt-out or erasure (``platform,account,kind,requested_at``).

`read_requests` validates the whole file before anything is done; error messages name
file:line and never echo the account (the file is the one place identities live).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agora.config import PLATFORMS, TEAM_PLATFORMS, AgoraConfig
from agora.privacy.errors import PrivacyInputError
from connectors.registry import AccountFormError
from connectors.registry import platform as _platform

KINDS = ("opt_out", "erasure")
#: Platforms whose records carry accounts; team-written sources hold none.
ACCOUNT_PLATFORMS = tuple(p for p in PLATFORMS if p not in TEAM_PLATFORMS)
REQUEST_COLUMNS = ("platform", "account", "kind", "requested_at")
# A request dated further ahead than this is a typo, not a clock difference.
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class Request:
    """One row of the requests file. `account` is a raw id or handle: memory only, never shown."""

    where: str  # file:line, the only way a request is named in logs and errors
    platform: str
    account: str = field(repr=False)
    kind: str = ""
    requested_at: datetime = field(default=datetime.min.replace(tzinfo=UTC))

    def request_id(self, key: str) -> str:
        """Keyed, so the audit log cannot be matched against guessed accounts without the key.

        Rotating the key changes every id: each request then applies again, which is exactly
        what re-creates the tombstones under the new key.
        """
        msg = f"agora-privacy-request|{self.platform}|{self.account}|{self.kind}|{self.requested_at.isoformat()}"
        return hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()[:32]


def _parse_requested_at(value: str, where: str, now: datetime) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PrivacyInputError(f"{where}: requested_at is not an ISO date (YYYY-MM-DD) or date-time") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if dt > now + FUTURE_TOLERANCE:
        raise PrivacyInputError(f"{where}: requested_at is in the future")
    return dt


def read_requests(cfg: AgoraConfig, path: str | Path, *, now: datetime | None = None) -> list[Request]:
    """Parse and validate the whole file before anything is done; raise on the first bad row.

    Error messages never echo the account: the file is the one place identities live.
    """
    path = Path(path)
    now = now or datetime.now(UTC)
    if not path.exists():
        raise PrivacyInputError(f"{path}: requests file not found")
    out: list[Request] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        for row in reader:
            line = reader.line_num
            where = f"{path}:{line}"
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if header is None:
                header = [c.lower() for c in cells]
                missing = [c for c in REQUEST_COLUMNS if c not in header]
                unknown = [c for c in header if c not in REQUEST_COLUMNS]
                if missing or unknown:
                    raise PrivacyInputError(
                        f"{where}: header must be {','.join(REQUEST_COLUMNS)}"
                        + (f" (missing: {', '.join(missing)})" if missing else "")
                        + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                    )
                continue
            if len(cells) != len(header):
                raise PrivacyInputError(f"{where}: expected {len(header)} cells, found {len(cells)}")
            rec = dict(zip(header, cells, strict=True))
            out.append(_request(cfg, rec, where, now))
    if header is None:
        raise PrivacyInputError(f"{path}:1: empty file (header {','.join(REQUEST_COLUMNS)} expected)")
    return out


def _request(cfg: AgoraConfig, rec: dict[str, str], where: str, now: datetime) -> Request:
    platform = rec["platform"].lower()
    if platform not in ACCOUNT_PLATFORMS:
        hint = " (a team-written source holds no accounts)" if platform in TEAM_PLATFORMS else ""
        raise PrivacyInputError(f"{where}: unknown platform {platform!r}{hint}; known: {', '.join(ACCOUNT_PLATFORMS)}")
    kind = rec["kind"].lower()
    if kind not in KINDS:
        raise PrivacyInputError(f"{where}: kind must be opt_out or erasure")
    account = rec["account"]
    if not account:
        raise PrivacyInputError(f"{where}: account is empty")
    requested_at = _parse_requested_at(rec["requested_at"], where, now)
    req = Request(where, platform, account, kind, requested_at)
    # Forms that can never be resolved are input errors, found before anything is done.
    if not account.startswith("@"):
        declared = _platform(platform)
        try:
            keys = declared.account_keys(sources_of(cfg, platform), account)
        except AccountFormError as e:
            raise PrivacyInputError(f"{where}: {e}") from None
        if keys is None and declared.lookup is None:
            raise PrivacyInputError(f"{where}: {platform} has no handle lookup; give the account id")
    return req


def sources_of(cfg: AgoraConfig, platform: str) -> list[Any]:
    return [s for s in cfg.sources if s.type == platform]


def requests_path(cfg: AgoraConfig, path: str | Path | None = None) -> Path:
    if path is not None:
        return Path(path)
    if cfg.privacy.requests is None:
        raise PrivacyInputError(
            "privacy.requests: no requests file configured (set it in agora.yml or pass --requests)"
        )
    return cfg.resolve(cfg.privacy.requests)
