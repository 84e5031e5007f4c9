"""`agora.yml`: one file describes a community; validated before anything runs.

Errors name the bad key (``sources.2.base_url: ...``) so a person can fix the file
without reading a traceback. Secrets are never in this file: only the *names* of
the environment variables that hold them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG = "agora.yml"

PLATFORMS = (
    "discourse",
    "github",
    "mediawiki",
    "stackexchange",
    "x",
    "mastodon",
    "survey",
    "feedback_log",
    "learnings",
    "team_activity",
)
TEAM_PLATFORMS = ("survey", "feedback_log", "learnings", "team_activity")


class ConfigError(ValueError):
    """A config problem a person can fix; the message is one line naming the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StaffAccount(_Strict):
    platform: str = Field(description="Platform the account belongs to (github, discourse, ...).")
    account: str = Field(description="The platform's stable account id (not the handle).")


class DifferentialPrivacy(_Strict):
    """Opt-in: account-based KPIs released through OpenDP's Gaussian mechanism (zCDP); docs/privacy.md."""

    rho_per_month: float = Field(
        gt=0, le=1, description="zCDP budget one month's release spends, all DP values together."
    )
    rho_cap_12_months: float = Field(gt=0, le=12, description="Never spend more than this over any 12 months.")
    release_after_days: int = Field(
        ge=3,
        le=366,
        description="A month is released once, this many days after it closes (>= 3: the returning-newcomer "
        "window of the previous month's last newcomers must have closed).",
    )
    max_contributions_per_account: int = Field(
        10,
        ge=1,
        le=1000,
        description="Contributions of one account in one month counted at most this many times (the clamp "
        "that bounds the sensitivity of `contributions`).",
    )

    @model_validator(mode="after")
    def _month_fits_cap(self) -> DifferentialPrivacy:
        if self.rho_per_month > self.rho_cap_12_months:
            raise ValueError("rho_per_month is larger than rho_cap_12_months: no month could ever be released")
        return self


class Privacy(_Strict):
    k_min: int = Field(5, ge=2, description="Smallest group any published number may describe.")
    retention_days: int = Field(395, ge=1, description="Landing data older than this is purged.")
    pseudonym_key_env: str = Field(
        "AGORA_PSEUDONYM_KEY", description="Environment variable holding the HMAC pseudonym key."
    )
    staff: list[StaffAccount] = Field(default_factory=list, description="Team accounts, excluded from community KPIs.")
    bots: list[StaffAccount] = Field(
        default_factory=list, description="Accounts to treat as bots besides the platform's flag."
    )
    requests: Path | None = Field(
        None, description="CSV of opt-out/erasure requests: platform, account, kind, requested_at."
    )
    contact: str | None = Field(
        None,
        pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+|https://\S+)$",
        description="Where people send opt-out and erasure requests (an e-mail address or an https URL); "
        "shown in the public notice (`agora notice`).",
    )
    differential_privacy: DifferentialPrivacy | None = Field(
        None, description="Release account-based KPIs with differential privacy (off when absent)."
    )


class Paths(_Strict):
    landing: str = "data/landing"
    state: str = "data/state"
    quarantine: str = "data/quarantine"
    warehouse: str = "data/warehouse"


class TagRule(_Strict):
    tag: str = Field(description="Tag added to a record whose public text matches any keyword.")
    keywords: list[str] = Field(min_length=1, description="Case-insensitive substrings.")


class _Source(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Unique source name.")
    tags: list[TagRule] = Field(default_factory=list, description="Keyword rules computed at the edge.")


class _Bounded(_Source):
    """Bounds on what one hostile or broken server can make a run do."""

    deadline_seconds: float = Field(
        120, gt=0, description="Total time one request may take, body included (timeout_seconds is per read)."
    )
    max_response_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest response body read.")
    max_pages: int = Field(10_000, ge=1, description="Most pages one listing may have; more fails the run.")


class _HttpSource(_Bounded):
    base_url: HttpUrl = Field(description="API root; point it at a replay server or a self-hosted instance.")
    token_env: str | None = Field(None, description="Environment variable holding an API token, if any.")
    timeout_seconds: float = Field(30, gt=0, description="Longest wait for any single read from the server.")
    max_retries: int = Field(5, ge=0, le=20)
    page_size: int = Field(50, ge=1, le=1000)


class DiscourseSource(_HttpSource):
    type: Literal["discourse"]
    categories: list[str] = Field(default_factory=list, description="Category slugs to read; empty = all public.")


class GithubSource(_HttpSource):
    type: Literal["github"]
    base_url: HttpUrl = HttpUrl("https://api.github.com")
    repos: list[str] = Field(min_length=1, description="owner/name of each public repository.")


class MediawikiSource(_Bounded):
    type: Literal["mediawiki"]
    api_url: HttpUrl = Field(description="The wiki's api.php URL.")
    pageviews_url: HttpUrl | None = Field(None, description="Pageviews REST endpoint root.")
    project: str | None = Field(None, description="Pageviews project, e.g. meta.wikimedia.org.")
    pages: list[str] = Field(default_factory=list, description="Talk pages whose revisions are read.")
    support_pages: list[str] = Field(default_factory=list, description="Pages whose daily views are read.")
    token_env: str | None = None
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(5, ge=0, le=20)
    page_size: int = Field(50, ge=1, le=500)

    @model_validator(mode="after")
    def _pageviews_complete(self) -> MediawikiSource:
        if self.support_pages and not (self.pageviews_url and self.project):
            raise ValueError("support_pages need pageviews_url and project")
        return self


class StackExchangeSource(_HttpSource):
    type: Literal["stackexchange"]
    base_url: HttpUrl = HttpUrl("https://api.stackexchange.com/2.3")
    site: str
    tagged: list[str] = Field(min_length=1, description="Tags to read; a question with any of them is read.")
    key_env: str | None = Field(None, description="Environment variable holding an app key (raises quota).")
    filter: str = Field(
        "withbody", description="API filter; a custom filter can leave out owner fields Agora never reads."
    )


class XSource(_Bounded):
    type: Literal["x"]
    query: str = Field(description="Recent-search query, e.g. '#airflow -is:retweet'.")
    base_url: HttpUrl | None = Field(None, description="Override the X API host (replay server).")
    bearer_token_env: str = Field("X_BEARER_TOKEN", description="Environment variable holding the bearer token.")
    page_size: int = Field(100, ge=10, le=100)
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(5, ge=0, le=20, description="Retries on network errors and 5xx.")
    max_wait_seconds: float = Field(
        960, ge=0, description="Longest rate-limit wait (x-rate-limit-reset) before the run fails instead."
    )


class MastodonSource(_HttpSource):
    type: Literal["mastodon"]
    hashtag: str = Field(pattern=r"^#?\w+$", description="Hashtag whose public timeline is read.")
    page_size: int = Field(40, ge=1, le=40, description="Statuses per page; Mastodon serves at most 40.")
    instance: str | None = Field(
        None,
        description="Instance whose local account ids these are (pseudonyms hash '<instance>:<id>'); "
        "defaults to base_url's host. Set it when base_url is a proxy or replay server.",
    )


class _FileSource(_Source):
    path: Path = Field(description="File kept by the team, relative to the config file.")


class SurveySource(_FileSource):
    type: Literal["survey"]


class FeedbackSource(_FileSource):
    type: Literal["feedback_log"]


class LearningsSource(_FileSource):
    type: Literal["learnings"]


class TeamActivitySource(_FileSource):
    type: Literal["team_activity"]


Source = Annotated[
    Union[
        DiscourseSource,
        GithubSource,
        MediawikiSource,
        StackExchangeSource,
        XSource,
        MastodonSource,
        SurveySource,
        FeedbackSource,
        LearningsSource,
        TeamActivitySource,
    ],
    Field(discriminator="type"),
]


class _PostgresConnection(_Strict):
    """How to reach one PostgreSQL database; shared by the warehouse and serving blocks.

    The password is never in agora.yml: `password_env` names the environment variable
    that holds it, read only when a connection is made.
    """

    #: The agora.yml block this connection is configured in (for error messages).
    _block: ClassVar[str] = ""

    kind: Literal["postgres"]
    host: str = Field("127.0.0.1", description="PostgreSQL host.")
    port: int = Field(5432, ge=1, le=65535)
    database: str = Field("agora", description="Database to connect to.")
    user: str = Field("agora", description="Role to connect as.")
    password_env: str = Field("AGORA_PG_PASSWORD", description="Environment variable holding the password.")
    sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"

    def password(self) -> str:
        value = os.environ.get(self.password_env)
        if not value:
            raise ConfigError(f"{self._block}.password_env: environment variable {self.password_env} is unset")
        return value


class PostgresServing(_PostgresConnection):
    """Where marts are published for Superset when one file on one host is not enough."""

    _block: ClassVar[str] = "serving"

    database: str = Field("agora", description="Database holding the serving schema.")
    user: str = Field("agora_publisher", description="Role that builds and swaps the serving schema.")
    password_env: str = Field(
        "AGORA_SERVING_PASSWORD", description="Environment variable holding the publisher's password."
    )
    schema_name: str = Field(
        "marts", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,40}$", description="Schema Superset reads."
    )
    reader_role: str = Field(
        "agora_reader", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Read-only role granted SELECT."
    )


class DuckdbServing(_Strict):
    """Default: `<paths.warehouse>/serving.duckdb`, swapped in with os.replace."""

    kind: Literal["duckdb"] = "duckdb"


Serving = Annotated[Union[DuckdbServing, PostgresServing], Field(discriminator="kind")]


class PostgresWarehouse(_PostgresConnection):
    """dbt builds the warehouse in this PostgreSQL database (dbt target `postgres`).

    The landing zone is copied into its `landing.events` table before each build.
    """

    _block: ClassVar[str] = "warehouse"

    database: str = Field("warehouse", description="Database dbt builds the warehouse in.")
    user: str = Field("agora", description="Role dbt and the landing load connect as (owns the warehouse).")


class DuckdbWarehouse(_Strict):
    """Default: dbt builds `<paths.warehouse>/agora.duckdb` (dbt target `duckdb`)."""

    kind: Literal["duckdb"] = "duckdb"


Warehouse = Annotated[Union[DuckdbWarehouse, PostgresWarehouse], Field(discriminator="kind")]


class Kpis(_Strict):
    targets: dict[str, float] = Field(default_factory=dict, description="KPI name -> target value.")


class AgoraConfig(_Strict):
    community: str
    privacy: Privacy = Privacy()
    paths: Paths = Paths()
    sources: list[Source] = Field(min_length=1)
    kpis: Kpis = Kpis()
    warehouse: Warehouse = DuckdbWarehouse()
    serving: Serving = DuckdbServing()
    # Directory of the config file; relative paths in it are resolved against it.
    root: Path = Field(default=Path("."), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list) -> list:
        seen: set[str] = set()
        for s in sources:
            if s.name in seen:
                raise ValueError(f"duplicate source name {s.name!r}")
            seen.add(s.name)
        return sources

    @model_validator(mode="after")
    def _serving_can_read_the_warehouse(self) -> AgoraConfig:
        if self.warehouse.kind == "postgres" and self.serving.kind == "duckdb":
            raise ValueError(
                "serving.kind: a PostgreSQL warehouse publishes to PostgreSQL serving only "
                "(set serving: {kind: postgres, ...})"
            )
        return self

    @model_validator(mode="after")
    def _staff_platforms_known(self) -> AgoraConfig:
        for who in (*self.privacy.staff, *self.privacy.bots):
            if who.platform not in PLATFORMS:
                raise ValueError(f"privacy: unknown platform {who.platform!r}")
        return self

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"sources: no source named {name!r} (have: {', '.join(s.name for s in self.sources)})")

    def path(self, kind: str) -> str:
        """A configured data path, resolved against the config file unless it is a URL."""
        raw = getattr(self.paths, kind)
        if "://" in raw or os.path.isabs(raw):
            return raw
        return str((self.root / raw).resolve())

    def resolve(self, p: Path | str) -> Path:
        p = Path(p)
        return p if p.is_absolute() else (self.root / p).resolve()

    def pseudonym_key(self) -> str:
        key = os.environ.get(self.privacy.pseudonym_key_env, "")
        if len(key) < 16:
            raise ConfigError(
                f"privacy.pseudonym_key_env: environment variable {self.privacy.pseudonym_key_env} "
                "is unset or shorter than 16 characters"
            )
        return key


def _format_error(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "tagged-union")))
    # Discriminated unions put the type name in the path (sources.0.discourse.base_url,
    # serving.postgres.port): drop it.
    parts = [p for p in loc.split(".") if p not in PLATFORMS and p not in ("postgres", "duckdb")]
    loc = ".".join(parts) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "union_tag_invalid":
        msg = f"unknown source type {first.get('input', {}).get('type')!r} (known: {', '.join(PLATFORMS)})"
    elif first["type"] == "missing":
        msg = "required key is missing"
    if first["type"] == "value_error" and loc == "(top level)":
        # Cross-key checks name their key themselves ("serving.kind: ...").
        msg = msg.removeprefix("Value error, ")
        loc, _, msg = msg.partition(": ") if ": " in msg else (loc, "", msg)
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{loc}: {msg}{more}"


def load_config(path: str | Path | None = None) -> AgoraConfig:
    """Read and validate a config file; raise ConfigError with a one-line message."""
    path = Path(path or os.environ.get("AGORA_CONFIG", DEFAULT_CONFIG))
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if "root" in raw:
        raise ConfigError("root: unknown key")
    try:
        return AgoraConfig(**raw, root=path.resolve().parent)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None
