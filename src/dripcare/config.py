"""Settings, read once from `DRIPCARE_*` environment variables (or a `.env` file)."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dripcare.scheduling import QuietHours

DEV_SECRET_FILE = Path("var") / "secret-key"
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Everything an operator can tune; the defaults run the embedded, no-services setup."""

    model_config = SettingsConfigDict(env_prefix="DRIPCARE_", env_file=".env", extra="ignore")

    env: str = Field("development", description="development | production")
    secret_key: str = Field(
        "", description="signs links and sessions; in development, made per install in var/"
    )
    database_url: str = "sqlite:///var/dripcare.db"
    db_pool_size: int = Field(
        10,
        ge=1,
        le=20,
        description="connections a process keeps open (PostgreSQL); as many more on bursts",
    )
    db_pool_timeout: float = Field(
        10.0, gt=0, description="seconds an API request waits for a free connection, then 503"
    )
    broker_url: str = "sqla+sqlite:///var/broker.db"
    smtp_url: str = Field(
        "capture://var/outbox",
        description="smtp://user:pass@host:587?starttls=true, smtps://…, capture://DIR, console://",
    )
    base_url: str = "http://localhost:8000"
    unsubscribe_mailbox: str = Field("", description="mailto target; default unsubscribe@<domain>")

    dispatch_interval: float = 10.0
    batch_size: int = 100
    max_per_tick: int = 5000
    lease_seconds: int = 300
    result_flush: int = Field(10, ge=1, description="outcomes written per commit in a batch")
    late_grace_hours: float = 24.0
    quiet_hours: str = "21:00-08:00"

    max_attempts: int = 8
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    smtp_timeout: float = 30.0

    api_rate_per_second: float = Field(100.0, gt=0, description="per API key")
    api_rate_burst: int = Field(200, ge=1)
    ratelimit_url: str = Field("", description="redis://… to share limits across processes")
    api_max_body_bytes: int = 1_000_000

    admin_session_hours: float = Field(12.0, gt=0, description="an admin sign-in lasts this long")
    cookie_secure: bool | None = Field(
        None,
        description="Secure flag on admin cookies; unset: on, except over http to localhost",
    )
    login_max_failures: int = Field(5, ge=1, description="per email, in login_window_minutes")
    login_max_failures_per_address: int = Field(20, ge=1, description="per client address")
    login_window_minutes: int = Field(15, ge=1)

    templates_dir: Path = Path(__file__).resolve().parents[2] / "templates" / "emails"

    @field_validator("quiet_hours")
    @classmethod
    def _valid_quiet_hours(cls, value: str) -> str:
        QuietHours.parse(value)
        return value

    @cached_property
    def quiet(self) -> QuietHours:
        return QuietHours.parse(self.quiet_hours)

    def check_production_safety(self) -> None:
        """Outside development a short or missing secret is refused: its tokens are forgeable."""
        if self.env != "development" and len(self.secret_key) < MIN_SECRET_LENGTH:
            raise RuntimeError(
                f"DRIPCARE_SECRET_KEY must be set to at least {MIN_SECRET_LENGTH} random "
                "characters (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )


def dev_secret(path: Path = DEV_SECRET_FILE) -> str:
    """This install's own development secret, made on first use and kept beside its database.

    A secret published in the source would make every development install's links work on
    every other one.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(draft, path)
        draft.unlink()
    return path.read_text(encoding="ascii").strip()


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    if not settings.secret_key and settings.env == "development":
        settings.secret_key = dev_secret()
    settings.check_production_safety()
    return settings
