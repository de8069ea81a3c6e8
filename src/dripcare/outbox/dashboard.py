"""A clinic's dashboard: what happened day by day, and what needs someone's attention now.

Days are the clinic's local days (UTC for every clinic at once). The database groups rows by
UTC quarter hour (`quarter_hour`, the same SQL meaning on SQLite and PostgreSQL) and Python
maps each quarter hour to its local day with zoneinfo: every zone's offset and every DST
transition fall on a quarter hour, so no row lands on the wrong side of a local midnight, and
at most 96 rows a day come back however many emails there were (bench/dashboard.py).

What each series counts:
- sent: emails by their `sent_at`, read from `sent_counts` (per clinic and quarter hour, kept by
  triggers on `messages`): the same numbers without counting every sent row of the window;
- failed: emails that ended `failed`, by their last change (nothing changes them after);
- bounced: addresses suppressed after a bounce, by when; a resubscribe deletes the
  suppression, and with it the bounce from this count;
- unsubscribed: unsubscribes, from the subscription history (a later resubscribe keeps them);
- check-ins: every answer, by when it was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Select, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from dripcare.models import (
    IN_FLIGHT,
    AlertStatus,
    CheckIn,
    ClinicAlert,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Patient,
    SentCount,
    Step,
    SubscriptionChange,
    SubscriptionEvent,
    Suppression,
    SuppressionSource,
)
from dripcare.outbox.reporting import RED_FLAG_LEVELS

WINDOWS = (30, 90)  # the day ranges the dashboard offers
LATE_AFTER = timedelta(minutes=30)  # due longer ago than this and still not sent: late
ATTENTION_LIMIT = 20  # entries shown per kind; the total is counted
UNREACHABLE_SOURCES = ("bounce", "complaint")  # suppression sources: the patient cannot be reached
SERIES = ("sent", "failed", "bounced", "unsubscribed", "check_ins")
QUARTER = 900  # seconds


class quarter_hour(FunctionElement[int]):
    """The number of whole UTC quarter hours from the Unix epoch to a timestamp column."""

    type = BigInteger()
    inherit_cache = True


@compiles(quarter_hour, "postgresql")
def _quarter_hour_pg(element: quarter_hour, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor(extract(epoch from {column}) / {QUARTER}) AS BIGINT)"


@compiles(quarter_hour, "sqlite")
def _quarter_hour_sqlite(element: quarter_hour, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC as naive text; strftime('%s') reads it as UTC, in whole seconds.
    return (
        f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / {QUARTER})"
    )


@dataclass(frozen=True)
class Scope:
    """One clinic (days in its zone) or, with `clinic_id` None, every clinic (days in UTC)."""

    clinic_id: int | None
    zone: str = "UTC"


@dataclass(frozen=True)
class Window:
    """The last `days` local days up to and including today, as UTC instants."""

    days: list[date]
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, now: datetime, days: int, zone: str) -> Window:
        tz = ZoneInfo(zone)
        today = now.astimezone(tz).date()
        first = today - timedelta(days=days - 1)

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)

        days_list = [first + timedelta(days=i) for i in range(days)]
        return cls(days_list, midnight(first), midnight(today + timedelta(days=1)))


@dataclass(frozen=True)
class Activity:
    """Counts per local day for each of SERIES, in the order of `window.days`."""

    window: Window
    zone: str
    series: dict[str, list[int]]

    def totals(self) -> dict[str, int]:
        return {name: sum(counts) for name, counts in self.series.items()}


def activity(session: Session, scope: Scope, days: int, now: datetime) -> Activity:
    """Sent, failed, bounced, unsubscribed and check-ins per day over the last `days` days."""
    window = Window.ending(now, days, scope.zone)
    stamps: dict[str, tuple[Any, Any, list[ColumnElement[bool]]]] = {
        "failed": (Message.updated_at, Message.clinic_id, [Message.status == MessageStatus.FAILED]),
        "bounced": (
            Suppression.created_at,
            Suppression.clinic_id,
            [Suppression.source == SuppressionSource.BOUNCE],
        ),
        "unsubscribed": (
            SubscriptionEvent.at,
            SubscriptionEvent.clinic_id,
            [SubscriptionEvent.change == SubscriptionChange.UNSUBSCRIBED],
        ),
        "check_ins": (CheckIn.created_at, CheckIn.clinic_id, []),
    }
    series = {
        name: _per_day(session, scope, window, stamp, clinic, where)
        for name, (stamp, clinic, where) in stamps.items()
    }
    series = {"sent": _sent_per_day(session, scope, window), **series}
    return Activity(window, scope.zone, series)


def _per_day(
    session: Session,
    scope: Scope,
    window: Window,
    stamp: ColumnElement[datetime],
    clinic: Any,
    where: list[ColumnElement[bool]],
) -> list[int]:
    bucket = quarter_hour(stamp)
    query = select(bucket, func.count()).where(stamp >= window.start, stamp < window.end, *where)
    if scope.clinic_id is not None:
        query = query.where(clinic == scope.clinic_id)
    return _by_day(session.execute(query.group_by(bucket)), scope, window)


def _sent_per_day(session: Session, scope: Scope, window: Window) -> list[int]:
    """From `sent_counts`: a window starts and ends on local midnights, which fall on quarter
    hours, so its quarters are exactly the instants `start <= sent_at < end`."""
    first, end = (int(at.timestamp()) // QUARTER for at in (window.start, window.end))
    query = select(SentCount.quarter, func.sum(SentCount.sent)).where(
        SentCount.quarter >= first, SentCount.quarter < end
    )
    if scope.clinic_id is not None:
        query = query.where(SentCount.clinic_id == scope.clinic_id)
    return _by_day(session.execute(query.group_by(SentCount.quarter)), scope, window)


def _by_day(rows: Iterable[Any], scope: Scope, window: Window) -> list[int]:
    """Counts per quarter hour added up per local day of the window."""
    index = {day: i for i, day in enumerate(window.days)}
    counts = [0] * len(window.days)
    zone = ZoneInfo(scope.zone)
    for quarter, n in rows:
        day = datetime.fromtimestamp(quarter * QUARTER, UTC).astimezone(zone).date()
        if day in index:
            counts[index[day]] += n
    return counts


# ---- needs attention ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One thing to look at: whose, what, since when; `message_pk` when it is one email."""

    clinic_id: int
    patient_id: int
    patient_name: str
    email: str
    what: str
    since: datetime
    message_pk: int | None = None


@dataclass(frozen=True)
class Listing:
    entries: list[Entry] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class Attention:
    undeliverable: Listing
    red_flags: Listing
    late: Listing


def needs_attention(
    session: Session, scope: Scope, since: datetime, now: datetime, limit: int = ATTENTION_LIMIT
) -> Attention:
    """Patients emails cannot reach, red flags no alert has reached the clinic about (since
    `since`), and emails late."""
    return Attention(
        undeliverable(session, scope, limit),
        unalerted_red_flags(session, scope, since, limit),
        late_emails(session, scope, now, limit),
    )


def _first_rows(
    session: Session,
    query: Select[*tuple[Any, ...]],
    clinic: Any,
    scope: Scope,
    limit: int,
    counted: Select[int] | None = None,
) -> tuple[list[Any], int]:
    """The first `limit` rows of `query` in `scope`, and how many there are in all: counted by
    `counted` when given (the same rows without the joins that only add columns)."""
    if scope.clinic_id is not None:
        query = query.where(clinic == scope.clinic_id)
        counted = None if counted is None else counted.where(clinic == scope.clinic_id)
    if counted is None:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
    total = session.scalar(counted)
    return list(session.execute(query.limit(limit))), total or 0


def _name(patient: Patient) -> str:
    return f"{patient.first_name} {patient.last_name}".strip() or patient.email


def undeliverable(session: Session, scope: Scope, limit: int = ATTENTION_LIMIT) -> Listing:
    """Patients still in aftercare whose address bounced or who complained (marked an email as
    spam): their emails are being cancelled."""
    in_aftercare = (
        select(Enrollment.id)
        .where(Enrollment.patient_id == Patient.id, Enrollment.status == EnrollmentStatus.ACTIVE)
        .exists()
    )
    query = (
        select(Suppression, Patient)
        .join(
            Patient,
            (Patient.clinic_id == Suppression.clinic_id) & (Patient.email == Suppression.email),
        )
        .where(Suppression.source.in_(UNREACHABLE_SOURCES), in_aftercare)
        .order_by(Suppression.created_at.desc(), Suppression.id.desc())
    )
    rows, total = _first_rows(session, query, Suppression.clinic_id, scope, limit)
    entries = [Entry(p.clinic_id, p.id, _name(p), p.email, s.reason, s.created_at) for s, p in rows]
    return Listing(entries, total)


def unalerted_red_flags(
    session: Session, scope: Scope, since: datetime, limit: int = ATTENTION_LIMIT
) -> Listing:
    """Urgent and emergency check-ins since `since` that no delivered alert told the clinic of.

    There is no acknowledgement yet: a red flag leaves this list once an alert about it has
    been delivered (by email or webhook), not when someone has called the patient.
    """
    delivered = (
        select(ClinicAlert.id)
        .where(ClinicAlert.check_in_id == CheckIn.id, ClinicAlert.status == AlertStatus.DELIVERED)
        .exists()
    )
    query = (
        select(CheckIn, Patient)
        .join(Enrollment, CheckIn.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .where(CheckIn.level.in_(RED_FLAG_LEVELS), CheckIn.created_at >= since, ~delivered)
        .order_by(CheckIn.created_at.desc(), CheckIn.id.desc())
    )
    rows, total = _first_rows(session, query, CheckIn.clinic_id, scope, limit)
    alerts = _alerts_of(session, [check_in.id for check_in, _ in rows])
    entries = [
        Entry(
            check_in.clinic_id,
            patient.id,
            _name(patient),
            patient.email,
            f"{check_in.level.value}: {_alert_state(alerts.get(check_in.id, []))}",
            check_in.created_at,
        )
        for check_in, patient in rows
    ]
    return Listing(entries, total)


def _alerts_of(session: Session, check_in_ids: list[int]) -> dict[int, list[ClinicAlert]]:
    found: dict[int, list[ClinicAlert]] = {}
    query = select(ClinicAlert).where(ClinicAlert.check_in_id.in_(check_in_ids))
    for alert in session.scalars(query.order_by(ClinicAlert.id)):
        assert alert.check_in_id is not None  # selected by check-in
        found.setdefault(alert.check_in_id, []).append(alert)
    return found


def _alert_state(alerts: list[ClinicAlert]) -> str:
    if not alerts:
        return "no alert was raised"
    parts = []
    for alert in alerts:
        tries = f", {alert.attempts} attempts" if alert.attempts else ""
        error = f": {alert.last_error[:120]}" if alert.last_error else ""
        parts.append(f"{alert.channel} alert {alert.status.value}{tries}{error}")
    return "; ".join(parts)


def late_emails(
    session: Session, scope: Scope, now: datetime, limit: int = ATTENTION_LIMIT
) -> Listing:
    """Emails due more than LATE_AFTER ago and still not sent, the longest waiting first.

    Asked once per partial index (scheduled; queued or sending), each in due order and counted
    on `messages` alone (every message has its enrollment, patient and step, so the joins
    change no count), then merged: each query reads one end of its index instead of every late
    row joined to patients (seconds at 10 M rows; bench/README.md, "Issue 14, aim 5")."""
    cutoff = now - LATE_AFTER
    found: list[Any] = []
    total = 0
    for late in (
        (Message.status == MessageStatus.SCHEDULED) & (Message.due_at < cutoff),
        Message.status.in_(IN_FLIGHT) & (Message.due_at < cutoff),
    ):
        query = (
            select(Message, Patient, Step.key)
            .join(Enrollment, Message.enrollment_id == Enrollment.id)
            .join(Patient, Enrollment.patient_id == Patient.id)
            .join(Step, Message.step_id == Step.id)
            .where(late)
            .order_by(Message.due_at, Message.id)
        )
        counted = select(func.count()).select_from(Message).where(late)
        rows, n = _first_rows(session, query, Message.clinic_id, scope, limit, counted)
        found += rows
        total += n
    found.sort(key=lambda row: (row[0].due_at, row[0].id))
    entries = [
        Entry(m.clinic_id, p.id, _name(p), p.email, f"{key}: {_state(m)}", m.due_at, m.id)
        for m, p, key in found[:limit]
    ]
    return Listing(entries, total)


def _state(message: Message) -> str:
    reason = f" ({message.status_reason})" if message.status_reason else ""
    return message.status.value + reason
