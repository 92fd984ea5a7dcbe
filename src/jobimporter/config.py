"""Settings: the only place that reads the environment (and ``.env``).

Domain code never imports this module; the composition roots (``cli``, ``runtime``) build one
``Settings`` and pass plain values down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobimporter import __version__
from jobimporter.crons import valid_cron

_PLACEHOLDER_SECRETS = frozenset({"changethis", "changeme", "secret", "password", "token"})


class Settings(BaseSettings):
    """Every knob, each an env var ``JOBIMPORTER_<NAME>`` except ``DATABASE_URL`` and ``REDIS_URL``."""

    model_config = SettingsConfigDict(
        env_prefix="JOBIMPORTER_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    data_dir: Path = Field(default=Path("data"), description="Embedded SQLite, Redis and logs live here.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "JOBIMPORTER_DATABASE_URL"),
        description=(
            "sqlite:///path, postgresql://user:pass@host/db or mongodb://host/db?replicaSet=rs0; "
            "default SQLite in the data dir."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "JOBIMPORTER_REDIS_URL"),
        description="redis://host:port/db; default: a private Redis started in the data dir.",
    )
    sources: Path | None = Field(
        default=None, description="TOML file of [[feeds]]; default: the 9 built-in feeds."
    )
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Items per queued batch job.")
    concurrency: int = Field(default=5, ge=1, le=256, description="Jobs each worker process runs at once.")
    attempts: int = Field(
        default=3, ge=1, le=50, description="Tries per queued job before it is a dead letter."
    )
    backoff_ms: int = Field(default=1000, ge=0, description="Base delay of the exponential retry backoff.")
    job_timeout_s: float = Field(default=30.0, gt=0, description="Limit for one batch job attempt.")
    feed_timeout_s: float = Field(default=300.0, gt=0, description="Limit for one fetch-and-parse attempt.")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="HTTP connect timeout.")
    read_timeout_s: float = Field(default=30.0, gt=0, description="HTTP read timeout (between bytes).")
    fetch_timeout_s: float = Field(
        default=120.0, gt=0, description="Total time allowed to download one feed."
    )
    max_feed_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Size cap, enforced while streaming."
    )
    user_agent: str = Field(
        default=f"jobimporter/{__version__} (+https://github.com/jobimporter/jobimporter)",
        description="Sent with every feed request.",
    )
    cron: str = Field(
        default="0 * * * *",
        description="When the scheduler imports the enabled feeds (cron syntax, UTC); a feed's own `cron` overrides it.",
    )
    schedule_refresh_s: float = Field(
        default=60, gt=0, description="How often a scheduler re-reads the feeds' own crons from the store."
    )
    seen_refresh_s: float = Field(
        default=86_400, ge=0, description="An unchanged job's last_seen is rewritten at most this often."
    )
    host_interval_s: float = Field(
        default=2.0,
        ge=0,
        description="At most one feed request per host per this many seconds, across workers.",
    )
    keep_completed_s: int = Field(
        default=3600, ge=0, description="Completed queue jobs are removed after this age."
    )
    keep_failed_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="Failed queue jobs (dead letters) are kept this long."
    )
    history_retention_days: int = Field(
        default=0,
        ge=0,
        description="Import runs older than this are deleted at each cron tick (0: keep all).",
    )
    expire_after_s: float = Field(
        default=86_400,
        ge=0,
        description="A job no feed lists any more expires after this grace period (0: at once).",
    )
    expiry_interval_s: float = Field(
        default=10,
        gt=0,
        description="How often each worker process looks for jobs whose time to expire came.",
    )
    expired_retention_days: int = Field(
        default=0, ge=0, description="Expired jobs are deleted this many days after they expired (0: kept)."
    )
    pause_after_failures: int = Field(
        default=5,
        ge=0,
        description="A feed whose imports failed for good this many times in a row pauses itself (0: never).",
    )
    webhook_attempts: int = Field(
        default=6, ge=1, le=50, description="Tries per webhook delivery before it is a dead letter."
    )
    webhook_backoff_ms: int = Field(
        default=5000, ge=0, description="Base of the exponential backoff between webhook delivery tries."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="Time limit of one webhook request (connect to answer)."
    )
    lock_duration_ms: int = Field(
        default=30_000,
        ge=1000,
        description="BullMQ job lock; a dead worker's job is retaken after it lapses.",
    )
    stalled_interval_ms: int = Field(
        default=30_000, ge=1000, description="How often workers look for stalled jobs."
    )
    stuck_after_s: float = Field(
        default=300,
        gt=0,
        description="The watchdog closes (or re-queues) an open import whose queue job is gone or dead "
        "for this long.",
    )
    watchdog_interval_s: float = Field(
        default=30, gt=0, description="How often a worker process's watchdog looks for stuck imports."
    )
    queue_prefix: str = Field(default="jobimporter", description="Prefix of BullMQ queue names in Redis.")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Logs on stderr: plain lines (text; coloured on a terminal) or one JSON object a line.",
    )
    host: str = Field(
        default="127.0.0.1", min_length=1, description="Address the admin API binds to (`run`, `api`)."
    )
    port: int = Field(default=8000, ge=0, le=65_535, description="Port of the admin API (0: any free one).")
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the API's mutations require; unset: mutations need no token.",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return valid_cron(value)

    @field_validator("database_url", "redis_url")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value else None

    @field_validator("admin_token")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        if secret.lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("JOBIMPORTER_ADMIN_TOKEN is a placeholder; set a real secret or unset it")
        if len(secret) < 8:
            raise ValueError("JOBIMPORTER_ADMIN_TOKEN is too short (at least 8 characters)")
        return SecretStr(secret)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobimporter.db').resolve()}"
