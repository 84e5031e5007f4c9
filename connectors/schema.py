"""The shared parts of every source's `agora.yml` block (pydantic), and ConfigError.

A connector module declares its own block as a subclass of `HttpSource` (an API), of
`Source` plus `Bounded` (an API read another way), or of `FileSource` (a team file).
Every field carries a description (tests/test_config.py checks it): the block documents
itself. `agora.config` imports these; this module imports nothing of Agora's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class ConfigError(ValueError):
    """A config problem a person can fix; the message is one line naming the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagRule(Strict):
    tag: str = Field(description="Tag added to a record whose public text matches any keyword.")
    keywords: list[str] = Field(min_length=1, description="Case-insensitive substrings.")


class Source(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Unique source name.")
    tags: list[TagRule] = Field(default_factory=list, description="Keyword rules computed at the edge.")


class Bounded(Source):
    """Bounds on what one hostile or broken server can make a run do."""

    deadline_seconds: float = Field(
        120, gt=0, description="Total time one request may take, body included (timeout_seconds is per read)."
    )
    max_response_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest response body read.")
    max_pages: int = Field(10_000, ge=1, description="Most pages one listing may have; more fails the run.")


class BaseHttpSource(Bounded):
    """An HTTP API whose credential, if any, has its own key (Stack Exchange's ``key_env``,
    Bluesky's ``app_password_env``): no ``token_env`` it would ignore."""

    base_url: HttpUrl = Field(description="API root; point it at a replay server or a self-hosted instance.")
    timeout_seconds: float = Field(30, gt=0, description="Longest wait for any single read from the server.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a failed request (network, 429, 5xx).")
    page_size: int = Field(50, ge=1, le=1000, description="Items asked for per page (capped at the API's maximum).")


class HttpSource(BaseHttpSource):
    """An HTTP API that takes a token named by ``token_env`` (read with `token_from_env`)."""

    token_env: str | None = Field(None, description="Environment variable holding an API token, if any.")


class FileSource(Source):
    path: Path = Field(description="File kept by the team, relative to the config file.")
