"""Validated configuration: the environment names operators set, read from the process and `.env`."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.signing import AuditKeyError, parse_private_key

# Values people paste from templates; production refuses them as secrets.
SLACK_SIGNING_SECRET_SHAPE = re.compile(r"[0-9a-f]{32}")
PLACEHOLDERS = frozenset({"", "changeme", "change-me", "secret", "xxx", "placeholder", "your-signing-secret"})

UserIds = Annotated[frozenset[str], NoDecode]
JsonMap = Annotated[dict[str, str], NoDecode]  # JSON text in the environment; blank means empty
# The containers the runbook names.
RUNBOOK_CONTAINERS = ("dynamic_config", "trading-control", "order", "trade-history", "manual-entry")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class InsecureSettingsError(ValueError):
    """Raised when production is configured in a way that would weaken the bot's guarantees."""


def _user_ids(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return frozenset(str(v).strip() for v in value if str(v).strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")

    database_url: str = Field(default="sqlite:///./opsbot.db", alias="OPSBOT_DATABASE_URL")
    # The owner role's URL for `opsbot db upgrade` (docs/audit.md); the bot's own URL then only gets grants.
    migration_database_url: str | None = Field(default=None, alias="OPSBOT_MIGRATION_DATABASE_URL")
    # Ed25519 key signing the audit checkpoints; development keeps a generated one beside the database file.
    audit_signing_key: SecretStr | None = Field(default=None, alias="OPSBOT_AUDIT_SIGNING_KEY")
    audit_checkpoint_seconds: float = Field(default=120.0, ge=5, le=3600, alias="OPSBOT_AUDIT_CHECKPOINT_SECONDS")
    env: Environment = Field(default=Environment.DEVELOPMENT, alias="OPSBOT_ENV")
    operators: UserIds = Field(default=frozenset(), alias="OPSBOT_OPERATORS")
    rollback_owners: UserIds = Field(default=frozenset(), alias="OPSBOT_ROLLBACK_OWNERS")
    halt_authorities: UserIds = Field(default=frozenset(), alias="OPSBOT_HALT_AUTHORITIES")
    admins: UserIds = Field(default=frozenset(), alias="OPSBOT_ADMINS")
    incident_channel: str | None = Field(default=None, alias="OPSBOT_INCIDENT_CHANNEL")
    announce_channel: str | None = Field(default=None, alias="OPSBOT_ANNOUNCE_CHANNEL")
    approval_ttl_seconds: int = Field(default=900, ge=30, le=86_400, alias="OPSBOT_APPROVAL_TTL_SECONDS")
    replica_id: str | None = Field(default=None, alias="OPSBOT_REPLICA_ID")
    # How long a replica's claim on an execution holds without renewal before another resumes it.
    execution_lease_seconds: float = Field(default=10.0, ge=1, le=300, alias="OPSBOT_EXECUTION_LEASE_SECONDS")

    trading_api_url: str | None = Field(default=None, alias="TRADING_API_URL")
    platform_api_url: str | None = Field(default=None, alias="PLATFORM_API_URL")
    platform_auth_enabled: bool = Field(default=True, alias="PLATFORM_AUTH_ENABLED")
    platform_jwt_issuer: str = Field(default="platform-service", alias="PLATFORM_JWT_ISSUER")
    platform_jwt_public_key: str | None = Field(default=None, alias="PLATFORM_JWT_PUBLIC_KEY")
    platform_jwt_jwks_url: str | None = Field(default=None, alias="PLATFORM_JWT_JWKS_URL")
    jwt_secret: SecretStr | None = Field(default=None, alias="JWT_SECRET")
    platform_service_token: SecretStr | None = Field(default=None, alias="PLATFORM_SERVICE_TOKEN")
    platform_token_url: str | None = Field(default=None, alias="PLATFORM_TOKEN_URL")
    client_id: str | None = Field(default=None, alias="OPSBOT_CLIENT_ID")
    client_secret: SecretStr | None = Field(default=None, alias="OPSBOT_CLIENT_SECRET")

    cosmos_endpoint: str | None = Field(default=None, alias="COSMOS_ENDPOINT")
    cosmos_key: SecretStr | None = Field(default=None, alias="COSMOS_KEY")
    cosmos_database: str | None = Field(default=None, alias="COSMOS_DATABASE")
    # Runbook container name -> the account's, as JSON: {"trading-control": "trading_control"}.
    cosmos_containers: JsonMap = Field(default_factory=dict, alias="OPSBOT_COSMOS_CONTAINERS")
    # The account's read-only key: when set, drift and /rollback read with it, so Cosmos itself refuses writes.
    cosmos_readonly_key: SecretStr | None = Field(default=None, alias="OPSBOT_COSMOS_READONLY_KEY")

    github_api_url: str = Field(default="https://api.github.com", alias="GITHUB_API_URL")
    github_token: SecretStr | None = Field(default=None, alias="GITHUB_TOKEN")
    github_repository: str | None = Field(default=None, alias="GITHUB_REPOSITORY")
    rollback_workflow: str | None = Field(default=None, alias="OPSBOT_ROLLBACK_WORKFLOW")
    # /rollback (docs/rollback.md): how long to follow the revert run and wait for the target version.
    rollback_run_timeout_seconds: float = Field(
        default=1800.0, gt=0, le=6 * 3600, alias="OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS"
    )
    rollback_version_timeout_seconds: float = Field(
        default=600.0, gt=0, le=6 * 3600, alias="OPSBOT_ROLLBACK_VERSION_TIMEOUT_SECONDS"
    )
    rollback_poll_seconds: float = Field(default=5.0, gt=0, le=300, alias="OPSBOT_ROLLBACK_POLL_SECONDS")
    # An optional copy of each rollback's evidence bundle (the store keeps it: `opsbot incident export`).
    incident_dir: str | None = Field(default=None, alias="OPSBOT_INCIDENT_DIR")

    # /gate and /cutover (docs/gate-and-cutover.md).
    gate_deadline_seconds: float = Field(default=20.0, gt=0, le=300, alias="OPSBOT_GATE_DEADLINE_SECONDS")
    gate_max_age_seconds: int = Field(default=3600, ge=60, le=7 * 86_400, alias="OPSBOT_GATE_MAX_AGE_SECONDS")
    # Runbook check name -> GitHub check-run name, as JSON: {"pnpm verify": "CI / verify"}.
    check_names: JsonMap = Field(default_factory=dict, alias="OPSBOT_CHECK_NAMES")
    # Another runbook file (validated at start like the shipped one); unset: bot/runbook/runbook.yaml.
    runbook_path: str | None = Field(default=None, alias="OPSBOT_RUNBOOK")
    # Rehearsals and tests: every stage's entry soak replaced by this many seconds; refused in production.
    soak_seconds: float | None = Field(default=None, ge=0, le=7 * 86_400, alias="OPSBOT_SOAK_SECONDS")

    # Post-cutover monitoring and the App Home (docs/monitoring.md).
    prometheus_url: str | None = Field(default=None, alias="OPSBOT_PROMETHEUS_URL")
    prometheus_token: SecretStr | None = Field(default=None, alias="OPSBOT_PROMETHEUS_TOKEN")
    prometheus_timeout_seconds: float = Field(default=5.0, gt=0, le=60, alias="OPSBOT_PROMETHEUS_TIMEOUT_SECONDS")
    monitor_interval_seconds: float = Field(default=15.0, gt=0, le=600, alias="OPSBOT_MONITOR_INTERVAL_SECONDS")
    monitor_immediate_seconds: int = Field(default=7200, ge=1, le=86_400, alias="OPSBOT_MONITOR_IMMEDIATE_SECONDS")
    monitor_window_seconds: int = Field(default=86_400, ge=1, le=7 * 86_400, alias="OPSBOT_MONITOR_WINDOW_SECONDS")
    leader_poll_seconds: float = Field(default=5.0, gt=0, le=60, alias="OPSBOT_LEADER_POLL_SECONDS")

    # The kill switch (docs/halt.md): the bot's own user id, so requests are
    # authorised without asking Slack; and the local journal of audit rows the store could not take.
    slack_bot_user_id: str | None = Field(default=None, alias="OPSBOT_SLACK_BOT_USER_ID")
    audit_journal: str | None = Field(default=None, alias="OPSBOT_AUDIT_JOURNAL")

    @property
    def audit_journal_path(self) -> Path:
        """Unset: next to an SQLite store's file, else ./opsbot-audit-journal.jsonl."""
        if self.audit_journal:
            return Path(self.audit_journal)
        url = self.database_url
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            return Path(url.removeprefix("sqlite:///")).with_suffix(".audit-journal.jsonl")
        return Path("opsbot-audit-journal.jsonl")

    @field_validator("prometheus_url", "prometheus_token", "soak_seconds", mode="before")
    @classmethod
    def _blank_monitoring_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cosmos_containers", "check_names", mode="before")
    @classmethod
    def _json_map(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f'not JSON ({exc}); expected an object such as {{"a": "b"}}') from None

    @field_validator("cosmos_containers")
    @classmethod
    def _known_containers(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(RUNBOOK_CONTAINERS))
        if unknown:
            raise ValueError(f"unknown runbook container(s) {unknown}; known: {list(RUNBOOK_CONTAINERS)}")
        if any(not name.strip() for name in value.values()):
            raise ValueError("a container name is empty")
        return value

    @field_validator("operators", "rollback_owners", "halt_authorities", "admins", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> frozenset[str]:
        return _user_ids(value)

    @field_validator(
        "incident_channel",
        "announce_channel",
        "trading_api_url",
        "platform_jwt_public_key",
        "platform_jwt_jwks_url",
        "platform_token_url",
        "cosmos_endpoint",
        "github_repository",
        "rollback_workflow",
        "replica_id",
        "platform_api_url",
        "client_id",
        "cosmos_database",
        "runbook_path",
        "migration_database_url",
        "incident_dir",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "jwt_secret",
        "platform_service_token",
        "client_secret",
        "cosmos_key",
        "github_token",
        "cosmos_readonly_key",
        "audit_signing_key",
        mode="before",
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.env is not Environment.PRODUCTION:
            return self
        problems = production_problems(self)
        if problems:
            raise InsecureSettingsError("OPSBOT_ENV=production refuses: " + "; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def has_slack_credentials(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def production_problems(settings: Settings) -> list[str]:
    """What production must not run with; empty when the settings are acceptable. Names, never values."""
    problems: list[str] = []
    secret = settings.slack_signing_secret
    if secret is None or secret.get_secret_value().strip().lower() in PLACEHOLDERS:
        problems.append("SLACK_SIGNING_SECRET is empty or a placeholder")
    elif not SLACK_SIGNING_SECRET_SHAPE.fullmatch(secret.get_secret_value()):
        problems.append("SLACK_SIGNING_SECRET is not a Slack signing secret (32 hexadecimal characters)")
    problems.extend(
        f"{name} is empty: nobody could {what}"
        for name, what, ids in (
            ("OPSBOT_OPERATORS", "run a command", settings.operators),
            ("OPSBOT_HALT_AUTHORITIES", "approve a halt or resume", settings.halt_authorities),
            ("OPSBOT_ROLLBACK_OWNERS", "approve a rollback", settings.rollback_owners),
            ("OPSBOT_ADMINS", "attest a gate check or advance the cutover", settings.admins),
        )
        if not ids
    )
    if settings.trading_api_url is not None and not settings.trading_api_url.lower().startswith("https://"):
        problems.append("TRADING_API_URL must be an https:// URL")
    problems.extend(_signing_key_problems(settings))
    token = settings.slack_bot_token
    if token is None or not token.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
    if settings.jwt_secret is not None:
        problems.append("JWT_SECRET is set: HS256 minting is not allowed in production")
    if settings.soak_seconds is not None:
        problems.append("OPSBOT_SOAK_SECONDS is set: the runbook's stage soaks are not shortened in production")
    if settings.is_sqlite:
        problems.append("OPSBOT_DATABASE_URL is SQLite: production needs a shared database (PostgreSQL)")
    return problems


def _signing_key_problems(settings: Settings) -> list[str]:
    if settings.audit_signing_key is None:
        return [
            "OPSBOT_AUDIT_SIGNING_KEY is not set: audit checkpoints must be signed with a key kept outside "
            "the database (see docs/audit.md)"
        ]
    try:
        parse_private_key(settings.audit_signing_key.get_secret_value())
    except AuditKeyError as exc:
        return [f"OPSBOT_AUDIT_SIGNING_KEY is {exc}"]
    return []


def describe_refusal(exc: Exception) -> str:
    """A settings refusal in words, with no input values: pydantic's own text echoes them, secrets included."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where else message)
        return "; ".join(parts)
    return str(exc)
