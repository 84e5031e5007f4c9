"""`agora.yml`: one file describes a community; validated before anything runs.

Errors name the bad key (``sources.2.base_url: ...``) so a person can fix the file
without reading a traceback. Secrets are never in this file: only the *names* of
the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.schema import ConfigError, Strict

DEFAULT_CONFIG = "agora.yml"


# The shared source blocks live with the connectors; each platform's own block is declared in its
# connector module and found by the registry (connectors/registry.py).
_Strict = Strict


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
            raise ValueError(
                "privacy.differential_privacy.rho_per_month: larger than rho_cap_12_months "
                f"({self.rho_per_month} > {self.rho_cap_12_months}), no month could ever be released"
            )
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


def _source_union() -> Any:
    from connectors.registry import platforms

    return Annotated[Union[tuple(p.source for p in platforms())], Field(discriminator="type")]  # noqa: UP007


def _platform_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from connectors.registry import names

    return names(), names(team=True)


PLATFORMS, TEAM_PLATFORMS = _platform_names()
Source = _source_union()


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


class SparkWarehouse(_Strict):
    """dbt builds the warehouse on Apache Spark (dbt target `spark`, adapter dbt-spark).

    `{kind: spark}` alone is an in-process local Spark (method `session`, master `local[2]`)
    whose tables and metastore live under `<paths.warehouse>/spark`. `method: thrift` reaches a
    Spark Thrift Server (a cluster); `warehouse_dir` is then the cluster's
    `spark.sql.warehouse.dir`, from which Agora reads the built marts (docs/operations.md).
    """

    kind: Literal["spark"]
    method: Literal["session", "thrift"] = Field("session", description="session: in-process; thrift: a server.")
    master: str = Field("local[2]", description="Spark master of the in-process session (method session).")
    warehouse_dir: str | None = Field(
        None, description="spark.sql.warehouse.dir; default <paths.warehouse>/spark (session), required for thrift."
    )
    driver_memory: str = Field("2g", pattern=r"^[0-9]+[kmgt]$", description="Driver JVM heap (method session).")
    shuffle_partitions: int = Field(4, ge=1, le=10000, description="spark.sql.shuffle.partitions.")
    host: str | None = Field(None, description="Thrift Server host (method thrift).")
    port: int = Field(10000, ge=1, le=65535, description="Thrift Server port (method thrift).")
    user: str | None = Field(None, description="User to connect as (method thrift).")
    password_env: str | None = Field(None, description="Environment variable holding the password (method thrift).")

    @model_validator(mode="after")
    def _method_keys(self) -> SparkWarehouse:
        if self.method == "thrift":
            for key in ("host", "user", "warehouse_dir"):
                if getattr(self, key) is None:
                    raise ValueError(f"warehouse.{key}: required with method thrift")
        else:
            for key in ("host", "user", "password_env"):
                if getattr(self, key) is not None:
                    raise ValueError(f"warehouse.{key}: only for method thrift (method is session)")
        return self

    def password(self) -> str:
        if not self.password_env:
            return ""
        value = os.environ.get(self.password_env)
        if not value:
            raise ConfigError(f"warehouse.password_env: environment variable {self.password_env} is unset")
        return value


Warehouse = Annotated[Union[DuckdbWarehouse, PostgresWarehouse, SparkWarehouse], Field(discriminator="kind")]


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
        if self.warehouse.kind == "spark" and self.privacy.differential_privacy is not None:
            # The release reads int_dp_counts_monthly, a view Spark keeps no files for.
            raise ValueError(
                "privacy.differential_privacy: not available with warehouse.kind spark yet (docs/operations.md)"
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
    parts = [p for p in loc.split(".") if p not in PLATFORMS and p not in ("postgres", "duckdb", "spark")]
    loc = ".".join(parts) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "union_tag_invalid" and loc in ("warehouse", "serving"):
        msg = f"{loc}.kind: unknown kind {first.get('input', {}).get('kind')!r} (expected: {first['ctx']['expected_tags']})"
        loc, _, msg = msg.partition(": ")
    elif first["type"] == "union_tag_invalid":
        msg = f"unknown source type {first.get('input', {}).get('type')!r} (known: {', '.join(PLATFORMS)})"
    elif first["type"] == "missing":
        msg = "required key is missing"
    if first["type"] == "value_error" and (loc == "(top level)" or re.match(r"Value error, [\w.]+: ", msg)):
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
