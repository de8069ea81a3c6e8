"""Settings, read once from `DRIPCARE_*` environment variables.

Never from a `.env` file in the working directory: the compose stack's `.env` holds the
production SMTP server, and `make run` in the same checkout would have mailed through it.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dripcare.errors import UserError
from dripcare.outbox.scheduling import QuietHours
from dripcare.shipped import campaigns_dir

MIN_SECRET_LENGTH = 32
# Secrets printed in dripcare's source at some point: anyone can sign links with them.
PUBLISHED_SECRETS = frozenset({"dev-only-not-secret", "test-secret"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Settings(BaseSettings):
    """Everything an operator can tune; the defaults run the embedded, no-services setup."""

    model_config = SettingsConfigDict(env_prefix="DRIPCARE_", extra="ignore")

    env: str = Field("development", description="development | production")
    secret_key: str = Field(
        "",
        description="signs links and sessions; in development, made per install in the state dir",
    )
    secrets_key: str = Field(
        "",
        description="Fernet keys (comma-separated, newest first) sealing clinics' SMTP "
        "passwords and DKIM keys; default: derived from the secret key",
    )
    state_dir: Path = Field(
        Path("var"),
        description="where dripcare writes files: beat's schedule and heartbeat, previews, "
        "and the embedded database, broker and outbox when their URLs are not set",
    )
    database_url: str = Field("", description="default: sqlite:///<state dir>/dripcare.db")
    db_pool_size: int = Field(
        10,
        ge=1,
        le=20,
        description="connections a process keeps open (PostgreSQL); as many more on bursts",
    )
    db_pool_timeout: float = Field(
        10.0, gt=0, description="seconds an API request waits for a free connection, then 503"
    )
    broker_url: str = Field("", description="default: sqla+sqlite:///<state dir>/broker.db")
    smtp_url: str = Field(
        "",
        description="smtp://user:pass@host:587?starttls=true, smtps://…, capture://DIR, "
        "console://; default: capture://<state dir>/outbox",
    )
    base_url: str = "http://localhost:8000"
    unsubscribe_mailbox: str = Field("", description="mailto target; default unsubscribe@<domain>")
    bounce_domain: str = Field(
        "",
        description="when set, each email's envelope sender is <bounce local part>+<token>@ this "
        "domain (VERP), so late bounces and complaints reach `dripcare inbound`; unset: the From",
    )
    bounce_local_part: str = Field("bounces", description="the VERP envelope sender's local part")
    operator_email: str = Field(
        "", description="told by email when a mail server refuses dripcare's sender or login"
    )
    operator_webhook_url: str = Field(
        "",
        description="also told by a signed JSON POST here (works while every SMTP server fails)",
    )
    operator_webhook_secret: str = Field(
        "", description="HMAC-SHA256 key of the Dripcare-Signature header of that POST"
    )
    alert_smtp_url: str = Field(
        "",
        description="a separate SMTP server for alerts to clinics and the operator; "
        "unset: alerts use a working one of the platform's and the clinic's own",
    )

    # 1 s: a tick every 10 s alone made p99 lateness ~10 s (bench/README.md, "Lateness").
    dispatch_interval: float = 1.0
    batch_size: int = 100
    max_per_tick: int = 5000
    max_queued: int = Field(
        500,
        ge=0,
        description="claimed emails waiting for a worker, all workers together: a tick only "
        "tops them up to this, so a burst waits in the database, where every tick shares it "
        "between clinics, not in the broker's first-in first-out queue; 0: no limit",
    )
    lease_seconds: int = 300
    result_flush: int = Field(10, ge=1, description="outcomes written per commit in a batch")
    late_grace_hours: float = 24.0
    quiet_hours: str = "21:00-08:00"

    max_attempts: int = Field(8, description="tries the mail server answered before giving up")
    max_starts: int = Field(
        20,
        ge=2,
        description="sends started without any outcome (the worker died or lost the database) "
        "before the message fails as one that stops its worker every time",
    )
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    smtp_timeout: float = 30.0
    dns_nameserver: str = Field(
        "",
        description="HOST or HOST:PORT of the DNS server the admin's sending page asks when "
        "checking clinics' SPF, DKIM and DMARC records; default: the system's resolver",
    )

    api_rate_per_second: float = Field(100.0, gt=0, description="per API key")
    api_rate_burst: int = Field(200, ge=1)
    ratelimit_url: str = Field("", description="redis://… to share limits across processes")
    domain_limits: str = Field(
        "",
        description="emails per second per recipient provider group (outlook, gmail, yahoo, "
        "icloud: send_limits.PROVIDER_GROUPS) or domain, all workers together, e.g. "
        "outlook=10/s,gmail=20/s,example.org=2/s (also /m, /h)",
    )
    transport_rate: float = Field(
        0.0, ge=0, description="emails per second through the transport, all workers; 0: no limit"
    )
    transport_concurrency: int = Field(
        0, ge=0, description="SMTP connections open at once, all workers together; 0: no limit"
    )
    domain_concurrency: str = Field(
        "",
        description="sends under way at once per recipient provider group or domain, all "
        "workers together, e.g. gmail=5,outlook=3; an email over it is put back",
    )
    slowdown_seconds: float = Field(
        600.0, gt=0, description="how long a 'slow down' reply (421/451 4.7.x) lowers a rate"
    )
    api_max_body_bytes: int = 1_000_000

    admin_session_hours: float = Field(12.0, gt=0, description="an admin sign-in lasts this long")
    cookie_secure: bool | None = Field(
        None,
        description="Secure flag on admin cookies; unset: on, except over http to localhost",
    )
    login_max_failures: int = Field(5, ge=1, description="per email, in login_window_minutes")
    login_max_failures_per_address: int = Field(20, ge=1, description="per client address")
    login_window_minutes: int = Field(15, ge=1)
    logo_hosts: str = Field(
        "",
        description="comma-separated hosts whose https logo URLs (set before logos were "
        "uploaded) still show in emails; unset: none, only uploaded logos",
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For is "
        "believed; unset: the connecting address is the client",
    )

    metrics_token: str = Field(
        "",
        description="bearer token GET /metrics requires; unset: /metrics is open in "
        "development and answers 403 in production",
    )
    metrics_redis_url: str = Field(
        "",
        description="redis://… where workers add up send and dispatcher timings for /metrics; "
        "default: DRIPCARE_RATELIMIT_URL, else the broker when it is Redis, else this process",
    )
    log_format: Literal["plain", "json"] = Field(
        "plain", description="json: one JSON object per line (API and workers)"
    )

    templates_dir: Path = Field(
        default_factory=campaigns_dir, description="the default campaigns (default: shipped ones)"
    )
    retention_days: int = Field(
        0,
        ge=0,
        description="delete finished emails, check-ins, sessions and stored API answers older "
        "than this many days, every night; 0 (the default) keeps everything",
    )
    retention_batch_size: int = Field(
        1000, ge=1, le=50_000, description="rows deleted per transaction by the purge"
    )

    # Provider webhooks under /webhooks/<provider>: each answers 404 until configured.
    ses_topic_arns: str = Field(
        "", description="comma-separated SNS topic ARNs whose SES notifications are accepted"
    )
    postmark_webhook_user: str = Field("", description="HTTP basic auth user set on the webhook")
    postmark_webhook_password: str = Field("", description="and its password")
    sendgrid_webhook_public_key: str = Field(
        "", description="the Signed Event Webhook's verification key (base64, as SendGrid shows it)"
    )
    mailgun_signing_key: str = Field("", description="Mailgun's HTTP webhook signing key")
    webhook_max_age_seconds: int = Field(
        300, ge=30, description="older signed timestamps (SendGrid, Mailgun) are refused"
    )

    @field_validator("quiet_hours")
    @classmethod
    def _valid_quiet_hours(cls, value: str) -> str:
        QuietHours.parse(value)
        return value

    @field_validator("domain_limits")
    @classmethod
    def _valid_domain_limits(cls, value: str) -> str:
        from dripcare.sending.send_limits import parse_limits  # it reads these settings

        parse_limits(value)
        return value

    @field_validator("domain_concurrency")
    @classmethod
    def _valid_domain_concurrency(cls, value: str) -> str:
        from dripcare.sending.send_limits import parse_concurrency  # it reads these settings

        parse_concurrency(value)
        return value

    @model_validator(mode="after")
    def _embedded_defaults_in_state_dir(self) -> Self:
        """The embedded database, broker and outbox live in the state dir unless set, so one
        setting moves every file dripcare writes out of the working directory."""
        self.database_url = self.database_url or f"sqlite:///{self.state_dir / 'dripcare.db'}"
        self.broker_url = self.broker_url or f"sqla+sqlite:///{self.state_dir / 'broker.db'}"
        self.smtp_url = self.smtp_url or f"capture://{self.state_dir / 'outbox'}"
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f"DRIPCARE_TRUSTED_PROXIES: {part!r} is not an IP address or CIDR "
                    "(e.g. 10.0.0.0/8,127.0.0.1)"
                ) from None
        return value

    @cached_property
    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        parts = (p.strip() for p in self.trusted_proxies.split(","))
        return tuple(ip_network(p, strict=False) for p in parts if p)

    @cached_property
    def logo_host_list(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.logo_hosts.split(",") if h.strip())

    @cached_property
    def quiet(self) -> QuietHours:
        return QuietHours.parse(self.quiet_hours)

    def check_production_safety(self) -> None:
        """Outside development a short or missing secret is refused: its tokens are forgeable."""
        if self.env != "development" and self.weak_secret():
            raise UserError(self.weak_secret_advice())

    def weak_secret(self) -> bool:
        return (
            len(self.secret_key.encode()) < MIN_SECRET_LENGTH
            or self.secret_key in PUBLISHED_SECRETS
        )

    def weak_secret_advice(self) -> str:
        return (
            f"DRIPCARE_SECRET_KEY must be at least {MIN_SECRET_LENGTH} random bytes and not one "
            "published in dripcare's source; make one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )

    def check_process_secret(self, bind_host: str = "127.0.0.1") -> None:
        """A process that signs links or serves them (serve, worker, beat) refuses a weak
        secret even in development, unless everything is on this machine: a development
        setting left on a reachable server would otherwise make every link forgeable."""
        local = urlsplit(self.base_url).hostname in LOCAL_HOSTS and bind_host in LOCAL_HOSTS
        if self.weak_secret() and not (self.env == "development" and local):
            where = "" if local else " (dripcare is reachable beyond localhost)"
            raise UserError(f"{self.weak_secret_advice()}{where}")


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    if not settings.secret_key and settings.env == "development":
        from dripcare.state import dev_secret  # the state dir's module reads these settings

        settings.secret_key = dev_secret(settings)
    settings.check_production_safety()
    return settings
