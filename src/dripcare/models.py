"""The data model. The `messages` table is the outbox: every email that will be sent is a row."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dripcare.people.emergency_numbers import DEFAULT_COUNTRY, number_for


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class MessageStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    HELD = "held"  # a red flag was reported: waits for the clinic to resume or stop (red_flags.py)


# The message lifecycle's groups of statuses, defined here once for every module.
# may still be cancelled or moved
UNSENT = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.HELD)
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING)  # claimed under a lease
# not finished: it will be sent, fail, or wait for the clinic (held)
UPCOMING = (MessageStatus.SCHEDULED, *IN_FLIGHT, MessageStatus.HELD)
RESCHEDULABLE = (*UNSENT, MessageStatus.SKIPPED)  # a new treatment time gives a new due time
RENDERED = (MessageStatus.SENT, MessageStatus.FAILED)  # shown from the version it was built with
FINAL = (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.CANCELLED, MessageStatus.SKIPPED)


class StopCause(enum.StrEnum):
    """Why a message will not be sent (status cancelled, or skipped for LATE)."""

    CLINIC = "clinic"  # the clinic cancelled the enrollment (API, CLI, admin)
    PATIENT = "patient"  # the patient stopped this treatment's emails; they may resume
    SUPERSEDED = "superseded"  # a newer enrollment for the same treatment replaced it
    STEP_REMOVED = "step-removed"  # a published campaign version removed its step
    UNSUBSCRIBED = "unsubscribed"  # the patient unsubscribed from the clinic; undone on resubscribe
    SUPPRESSED = "suppressed"  # the address was on the suppression list when it was due
    BOUNCED = "bounced"  # a later bounce said the address does not work; undone on resubscribe
    COMPLAINED = "complained"  # the patient marked an email as spam; undone on resubscribe
    ERASED = "erased"  # the patient was erased on request
    LATE = "late"  # skipped: already due more than the grace period before enrollment
    RED_FLAG = "red-flag"  # the clinic stopped the sequence after a red-flag check-in
    CONDITION = "condition"  # skipped: a skip_if condition the clinic marked (skip_conditions.py)
    NOTHING_MISSED = "nothing-missed"  # a late_booking step when no stop-now email was missed


class EnrollmentStatus(enum.StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


def _enum(cls: type[enum.StrEnum], length: int = 16) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        validate_strings=True,
        length=length,
        values_callable=lambda e: [m.value for m in e],
    )


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sender_email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64))
    brand_color: Mapped[str] = mapped_column(String(16), default="#0f766e")
    logo_url: Mapped[str] = mapped_column(String(500), default="")
    opening_hours: Mapped[str] = mapped_column(String(200), default="Monday to Friday, 9am to 5pm")
    after_hours: Mapped[str] = mapped_column(String(300), default="")
    # ISO 3166 alpha-2; gives the emergency number (emergency_numbers.py) unless overridden
    country: Mapped[str] = mapped_column(
        String(2), default=DEFAULT_COUNTRY, server_default=DEFAULT_COUNTRY
    )
    # The clinic's own emergency number, "" for its country's; the column keeps its old name.
    emergency_override: Mapped[str] = mapped_column("emergency_number", String(20), default="")
    alert_email: Mapped[str] = mapped_column(String(320), default="")
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    webhook_secret: Mapped[str] = mapped_column(String(100), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "21:00-08:00" on the patient's clock; None: DRIPCARE_QUIET_HOURS (send_rules.py)
    quiet_hours: Mapped[str | None] = mapped_column(String(16))
    # the campaign slug an enrollment that names none follows (campaigns.resolve_slug)
    default_campaign: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def emergency_number(self) -> str:
        """What patients are told to call in an emergency: the override, else the country's."""
        return self.emergency_override or number_for(self.country or DEFAULT_COUNTRY)

    @emergency_number.setter
    def emergency_number(self, number: str) -> None:
        self.emergency_override = number


# Indexes only migrations create, on PostgreSQL alone (alembic/env.py leaves them out of the
# drift check): the trigram index of patients' email and names that serves the admin outbox's
# search (`lower(...) LIKE '%text%'`); SQLite has no pg_trgm and keeps LIKE.
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_patients_search_trgm"})


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("clinic_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: the unique index on (clinic_id, ...) serves clinic_id lookups
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    # E.164 ("+447946000111") or "": for staff to call the patient back (validation.py)
    phone: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # Signed into every link the patient is sent; bumping it voids the older links (links.py).
    link_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None]  # personal data removed on request (erasure.py)

    clinic: Mapped[Clinic] = relationship()


class Campaign(Base):
    """A treatment's email sequence for one clinic; `version` is the live (published) version."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("clinic_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: the unique index on (clinic_id, ...) serves clinic_id lookups
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    treatment: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # treatment attributes an enrollment must bring: {"peel_depth": ["superficial"]}
    requires: Mapped[dict[str, list[str]]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    steps: Mapped[list[Step]] = relationship(
        back_populates="campaign", order_by="Step.position", cascade="all, delete-orphan"
    )
    templates: Mapped[list[CampaignTemplate]] = relationship(cascade="all, delete-orphan")


class CampaignVersion(Base):
    """One saved state of a campaign: every step and template source, as a JSON snapshot.

    Every save adds a row (a draft); publishing one makes it the campaign's `version`, and the
    `steps` and `campaign_templates` rows are then rewritten to match it. Rows are never
    changed afterwards except to stamp publication, so a version number always means the
    same emails, and `digest` can key caches across processes.
    """

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(String(300), default="")
    based_on: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    published_by: Mapped[str] = mapped_column(String(200), default="")


class CampaignTemplate(Base):
    """One template source file (a step body, the layout or a partial) of a campaign."""

    __tablename__ = "campaign_templates"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    offset_days: Mapped[int] = mapped_column(Integer, default=0)
    offset_hours: Mapped[int] = mapped_column(Integer, default=0)
    offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    send_time: Mapped[str | None] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(String(300), default="")
    template: Mapped[str] = mapped_column(String(200))
    checkin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # "1d": still sent up to this long after its planned time; None: DRIPCARE_LATE_GRACE_HOURS
    send_until: Mapped[str | None] = mapped_column(String(16))
    # still sent while a red flag holds the patient's other emails (red_flags.py)
    safety_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # pre-care (enrollments.py): a stop-now email a late booking missed goes into the
    # late_booking one, sent at enrollment
    stop_now: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    late_booking: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # skip_conditions.SkipCondition values that make this step pointless for an enrollment
    skip_if: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))

    campaign: Mapped[Campaign] = relationship(back_populates="steps")


class Enrollment(Base):
    """One treatment of one patient, following one campaign."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("clinic_id", "external_id"),
        Index("ix_enrollments_patient_treatment", "patient_id", "treatment"),
        # a clinic's list, page by page in id order (GET /enrollments), without a sort
        Index("ix_enrollments_clinic_id_id", "clinic_id", "id"),
        # the same list narrowed to one status (GET /enrollments?status=): enrollments change
        # status once or twice in their life, so a full index costs the send path nothing
        Index("ix_enrollments_clinic_status_id", "clinic_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    treatment: Mapped[str] = mapped_column(String(64))
    treated_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[EnrollmentStatus] = mapped_column(
        _enum(EnrollmentStatus), default=EnrollmentStatus.ACTIVE
    )
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]
    # what the clinic says about the treatment, checked against Campaign.requires
    attributes: Mapped[dict[str, str]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    # skip conditions the clinic marked (skip_conditions.py)
    next_session_booked_at: Mapped[datetime | None]
    one_off: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # stop-now steps a late booking missed: the late_booking email lists them (missed_steps)
    missed_steps: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))

    patient: Mapped[Patient] = relationship()
    campaign: Mapped[Campaign] = relationship()
    messages: Mapped[list[Message]] = relationship(
        back_populates="enrollment", order_by="Message.due_at"
    )


class Message(Base):
    """The outbox row. `lease_token` names the claim that owns it while queued or sending."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id"),
        # a clinic's list, page by page in id order (GET /messages), without a sort
        Index("ix_messages_clinic_id_id", "clinic_id", "id"),
        # Serves the dispatcher's claim: only scheduled rows, in due order (stays small).
        Index(
            "ix_messages_due_scheduled",
            "due_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
        # Serves the dispatcher's per-clinic claim (fair share between clinics, dispatch.py).
        Index(
            "ix_messages_clinic_due_scheduled",
            "clinic_id",
            "due_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
        # The dashboard's sent per day and failed per day of one clinic (dashboard.py). Partial:
        # each of a send's three updates (claim, start, outcome) adds an entry to every full
        # index of the table, since status changes (no HOT update); only the outcome sets sent_at.
        Index(
            "ix_messages_clinic_id_sent_at",
            "clinic_id",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
            sqlite_where=text("sent_at IS NOT NULL"),
        ),
        Index(
            "ix_messages_failed",
            "clinic_id",
            "updated_at",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
        # The admin outbox's "recent" (newest change first) and the API's `?since=` of a clinic.
        Index("ix_messages_clinic_id_updated_at", "clinic_id", "updated_at", "id"),
        # The admin outbox's "upcoming" of a clinic, soonest first (reporting.upcoming_messages).
        Index(
            "ix_messages_clinic_upcoming",
            "clinic_id",
            "due_at",
            "id",
            postgresql_where=text("status IN ('scheduled', 'queued', 'sending', 'held')"),
            sqlite_where=text("status IN ('scheduled', 'queued', 'sending', 'held')"),
        ),
        # GET /messages?status=scheduled (or queued, sending) of a clinic in id order, without
        # walking past its finished rows. Partial: a claim and a start each add an entry (the
        # row is still unsent), the outcome none. id first: as (clinic_id, id) the planner
        # (which costs an index by its first column's order in the table) walked the primary key.
        Index(
            "ix_messages_unsent_id_clinic",
            "id",
            "clinic_id",
            postgresql_where=text("status IN ('scheduled', 'queued', 'sending', 'held')"),
            sqlite_where=text("status IN ('scheduled', 'queued', 'sending', 'held')"),
        ),
        # Serves lease recovery: only the few rows in flight.
        Index(
            "ix_messages_lease_inflight",
            "lease_until",
            postgresql_where=text("status IN ('queued', 'sending')"),
            sqlite_where=text("status IN ('queued', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys to clinics and steps (migration f6a7b8c9d0e1): both are implied by the
    # enrollment's (its clinic, its campaign's steps), written by code from it, and never
    # deleted; each would cost every outbox row a trigger, a probe and a lock on insert.
    clinic_id: Mapped[int] = mapped_column(Integer)
    # no index of its own: the unique index on (enrollment_id, step_id) serves it
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"))
    step_id: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus), default=MessageStatus.SCHEDULED
    )
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    stop_cause: Mapped[StopCause | None] = mapped_column(_enum(StopCause))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # tries the mail server answered
    # starts since the last recorded outcome: a message that kills its worker every time stops
    starts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None]
    campaign_version: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    enrollment: Mapped[Enrollment] = relationship(back_populates="messages")
    step: Mapped[Step] = relationship(primaryjoin="foreign(Message.step_id) == Step.id")

    @property
    def step_key(self) -> str:
        return self.step.key


class SentCount(Base):
    """Emails sent per clinic and UTC quarter hour (`sent_at`), for the dashboard's sent per day.

    Kept exact by database triggers on `messages` (migration d7e8f9a0b1c2): every insert, update
    of `sent_at` or `clinic_id`, and delete moves the count, in the writing transaction, however
    the row was written (the send path's one statement, an ORM update, retention, erasure). A
    clinic's 30 days are then at most 2,880 rows instead of every email sent in them.
    """

    __tablename__ = "sent_counts"

    # quarter first: a window of every clinic is one range of the primary key, as is one clinic's
    quarter: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds // 900
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)


class AttemptOutcome(enum.StrEnum):
    """What one delivery attempt came to: the message's status after a send (delivery.py), or
    what the receiving side reported later (feedback.FeedbackKind)."""

    SCHEDULED = "scheduled"  # a temporary refusal: tried again later
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    HELD = "held"
    BOUNCE = "bounce"
    DELAY = "delay"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


class DeliveryAttempt(Base):
    """Append-only log of every send attempt and its outcome, and of what the receiving side
    reported later (bounce, delay, complaint, delivered: feedback.py)."""

    __tablename__ = "delivery_attempts"
    # a report applied once: a replayed webhook or DSN finds its key taken (NULLs never clash)
    __table_args__ = (UniqueConstraint("message_pk", "feedback_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: the unique index on (message_pk, feedback_key) serves it
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[AttemptOutcome] = mapped_column(_enum(AttemptOutcome))
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    feedback_key: Mapped[str | None] = mapped_column(String(200))


class SuppressionSource(enum.StrEnum):
    """How an address got on a clinic's suppression list (or a subscription change came)."""

    BOUNCE = "bounce"  # the recipient's server said the mailbox does not exist or is disabled
    COMPLAINT = "complaint"  # the patient marked an email as spam (feedback loop)
    UNSUBSCRIBE = "unsubscribe"
    ONE_CLICK = "one-click"  # the RFC 8058 POST from the patient's mail client
    WEB = "web"  # the unsubscribe page's button
    MAILTO = "mailto"  # an email to the List-Unsubscribe mailbox
    PREFERENCES = "preferences"  # the preferences page
    ERASURE = "erasure"  # the patient was erased on request; the address is kept hashed


class Suppression(Base):
    """An address this clinic must not email again (hard bounce, unsubscribe, complaint).

    An erased patient's address is kept only as `sha256:<hex>` (suppression.hashed), which
    still matches the address if a clinic enrolls it again.
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("clinic_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(300))
    source: Mapped[SuppressionSource] = mapped_column(_enum(SuppressionSource, length=32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubscriptionChange(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"
    REPLAY_IGNORED = "replay-ignored"  # a one-click POST replayed after a resubscribe


class SubscriptionEvent(Base):
    """Append-only history of a patient's unsubscribes and resubscribes: when, how, from which
    email. `suppressions` says who must not be emailed now; this says how it came to be, and
    lets a replayed one-click POST be told from a new request (suppression.py)."""

    __tablename__ = "subscription_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    change: Mapped[SubscriptionChange] = mapped_column(_enum(SubscriptionChange))
    source: Mapped[SuppressionSource] = mapped_column(_enum(SuppressionSource, length=32))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A clinic's API key. Only a SHA-256 of the secret is kept: the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class IdempotentRequest(Base):
    """The stored response to a POST made with an Idempotency-Key, replayed on a retry."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("clinic_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckInLevel(enum.StrEnum):
    FINE = "fine"  # "healing as expected"
    EXPECTED = "expected"  # worried, but nothing on the red-flag list
    URGENT = "urgent"  # call the clinic today
    EMERGENCY = "emergency"  # emergency services now


class RedFlagState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class RedFlagOutcome(enum.StrEnum):
    """How the clinic resolved a red flag (red_flags.resolve)."""

    RESUME = "resume"  # the held emails go out again (those whose time has passed are skipped)
    STOP = "stop"  # the sequence stops


class CheckIn(Base):
    """A patient's answer to "How is your skin today?" from a check-in email."""

    __tablename__ = "check_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"), index=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    level: Mapped[CheckInLevel] = mapped_column(_enum(CheckInLevel))
    answers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A red flag's lifecycle (red_flags.py): open, acknowledged, resolved; None for no red flag.
    alert_state: Mapped[RedFlagState | None] = mapped_column(_enum(RedFlagState))
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    outcome: Mapped[RedFlagOutcome | None] = mapped_column(_enum(RedFlagOutcome))  # once resolved
    resolution_note: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    # the one-click acknowledgement link's id (staff_links.py); used once
    ack_jti: Mapped[str] = mapped_column(String(32), default="", server_default="")
    ack_jti_used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # when the next escalation round is due while unacknowledged (escalation.py)
    escalate_at: Mapped[datetime | None]
    escalations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AlertStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AlertKind(enum.StrEnum):
    RED_FLAG = "red-flag"  # a check-in with red-flag symptoms (check_in_id)
    UNREACHABLE = "unreachable"  # a patient's address bounced or complained (patient_id)
    TRANSPORT = "transport"  # emails are paused: the mail server refuses us (detail)
    RESUMED = "resumed"  # the paused transport works again (detail)


class AlertChannel(enum.StrEnum):
    EMAIL = "email"  # the clinic's alert address (or an escalation's)
    WEBHOOK = "webhook"  # the clinic's webhook URL (or an escalation's)
    OPERATOR = "operator"  # the platform operator's email, DRIPCARE_OPERATOR_EMAIL
    OPERATOR_HOOK = "operator-hook"  # the operator's webhook, DRIPCARE_OPERATOR_WEBHOOK_URL

    @classmethod
    def of_clinic(cls, clinic: Clinic) -> list[AlertChannel]:
        """Where a clinic hears of an alert: always its alert email, its webhook if it has one."""
        return [cls.EMAIL, *([cls.WEBHOOK] if clinic.webhook_url else [])]


class ClinicAlert(Base):
    """An outbox row for telling a clinic about a red-flag check-in, or about a patient whom
    aftercare emails can no longer reach: by email or webhook. Transport alerts
    (transport_alerts.py) also have rows for the platform operator: no clinic, channel
    `operator` or `operator-hook`; no clinic's view ever lists those.

    Like patient emails, alerts are rows first and deliveries second, so a crash, an SMTP
    outage or a webhook returning 500 delays an alert but never loses or doubles it.
    """

    __tablename__ = "clinic_alerts"
    # round 0 is the first alert; each escalation round adds rows, one per recipient
    __table_args__ = (UniqueConstraint("check_in_id", "channel", "escalation", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"), index=True)
    check_in_id: Mapped[int | None] = mapped_column(ForeignKey("check_ins.id"))
    kind: Mapped[AlertKind] = mapped_column(
        _enum(AlertKind), default=AlertKind.RED_FLAG, server_default=AlertKind.RED_FLAG.value
    )
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    channel: Mapped[AlertChannel] = mapped_column(_enum(AlertChannel))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")  # transport alerts
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus), default=AlertStatus.PENDING)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    escalation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # an escalation's address or webhook URL; "" means the clinic's own (alert_email, webhook_url)
    recipient: Mapped[str] = mapped_column(String(500), default="", server_default="")


class AdminUser(Base):
    """A person who signs in to the admin: one clinic's admin, or a platform admin (all clinics)."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"), index=True)
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in browser. Only a SHA-256 of the cookie's random token is kept, so a leaked
    table signs nobody in; sign-out and expiry end it on the server, whatever the cookie says."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinics.id")
    )  # a platform admin's pick
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[AdminUser] = relationship()


class LoginFailure(Base):
    """One failed sign-in, counted per email and per client address to throttle guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(340))  # "email:<address>" or "addr:<client address>"
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ActorKind(enum.StrEnum):
    ADMIN = "admin"  # a person signed in to the web admin
    API_KEY = "api-key"  # a clinic's system, through the REST API
    CLI = "cli"  # an operator at the `dripcare` command
    SYSTEM = "system"  # dripcare itself (a scheduled task)
    EMAIL_LINK = "email-link"  # clinic staff, from the signed link in an alert email


class AuditEvent(Base):
    """Append-only record of an administrative action: who, what, on which object, when.

    Never holds a patient's personal data: patients are named by id, which says nothing about
    the person once they are erased.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        # a clinic's log, newest first, page by page
        Index("ix_audit_events_clinic_id_id", "clinic_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"))
    actor_kind: Mapped[ActorKind] = mapped_column(_enum(ActorKind))
    actor_id: Mapped[int | None] = mapped_column(Integer)  # admin user or API key id
    actor: Mapped[str] = mapped_column(String(320))  # admin email, key prefix, OS user
    action: Mapped[str] = mapped_column(String(64))  # e.g. campaign.publish, patient.erase
    target_kind: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")


class WebhookToken(Base):
    """A signed webhook token already used (Mailgun): the same token again is a replay.

    Kept only as long as its timestamp could still pass the freshness check.
    """

    __tablename__ = "webhook_tokens"
    __table_args__ = (UniqueConstraint("provider", "token"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ClinicSendingDomain(Base):
    """A domain a platform admin has verified for a clinic: its From addresses must use one."""

    __tablename__ = "clinic_sending_domains"
    __table_args__ = (UniqueConstraint("clinic_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    domain: Mapped[str] = mapped_column(String(253))  # lower case, IDNA (punycode)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DkimKey(Base):
    """A clinic's DKIM signing key for one domain and selector (dkim_keys.py)."""

    __tablename__ = "dkim_keys"
    __table_args__ = (UniqueConstraint("clinic_id", "domain", "selector"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    domain: Mapped[str] = mapped_column(String(253))
    selector: Mapped[str] = mapped_column(String(63))
    private_key: Mapped[str] = mapped_column(Text)  # PEM, sealed by secrets_box
    public_key: Mapped[str] = mapped_column(Text)  # base64 DER: the p= of the DNS record
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClinicTransport(Base):
    """A clinic's own SMTP server; clinics without one send through DRIPCARE_SMTP_URL."""

    __tablename__ = "clinic_transports"

    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    # sealed by secrets_box (it holds the password), or "env:NAME" naming where it is
    smtp_url: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClinicLogo(Base):
    """The clinic's uploaded logo, served by dripcare at /logos/ (logos.py): in the database,
    so every host serves it."""

    __tablename__ = "clinic_logos"

    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(16))  # in the URL: a new logo, a new URL
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TransportCircuit(Base):
    """A transport (an SMTP server and its credentials) that refused our sender, login or TLS.

    Kept in the database so that every worker host agrees on it and an operator can see it;
    circuit.py opens, probes and closes it. No row means the transport is closed (sending).
    """

    __tablename__ = "transport_circuits"

    transport: Mapped[str] = mapped_column(String(200), primary_key=True)
    is_open: Mapped[bool] = mapped_column(Boolean, default=False)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, since it opened
    opened_at: Mapped[datetime | None]
    probe_at: Mapped[datetime | None]  # when the next batch may try the transport again
    stage: Mapped[str] = mapped_column(String(16), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
