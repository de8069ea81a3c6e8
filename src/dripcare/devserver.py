"""`dripcare dev`: the whole service in one process on the embedded default.

SQLite for data, kombu's SQLAlchemy transport on a second SQLite file as the broker, a solo
Celery worker with beat embedded, and every email written to ./var/outbox/ as an .eml file.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import func, select

from dripcare.beat import schedule_path
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.migrations import upgrade
from dripcare.models import Clinic, Message, MessageStatus
from dripcare.outbox.enrollment_input import EnrollRequest
from dripcare.outbox.enrollments import enroll
from dripcare.people.admins import create_admin_user
from dripcare.people.apikeys import create_key
from dripcare.people.clinic_setup import create_clinic
from dripcare.redaction import without_passwords
from dripcare.sending.transports import CaptureTransport, transport_from_url
from dripcare.state import state_dir

DEMO_ZONES = (
    "Pacific/Honolulu",
    "America/Los_Angeles",
    "America/Chicago",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def daytime_zone(now: datetime) -> str:
    """A zone where it is now 10:00-18:59, so the demo's emails are not held by quiet hours."""
    for zone in DEMO_ZONES:
        if 10 <= now.astimezone(ZoneInfo(zone)).hour < 19:
            return zone
    return "UTC"  # unreachable with the list above, which covers every hour of the day


DEMO_ADMIN = "admin@demo-clinic.example"


@dataclass(frozen=True)
class Demo:
    clinic_id: int
    api_key: str  # shown once, like any key
    admin_password: str  # for DEMO_ADMIN; shown once too


def seed_demo(now: datetime | None = None) -> Demo | None:
    """A demo clinic and patients with back-dated treatments; None if a clinic exists already."""
    now = now or datetime.now(UTC)
    settings = get_settings()
    with session_scope() as session:
        if session.scalar(select(Clinic.id).limit(1)) is not None:
            return None
        zone = daytime_zone(now)
        clinic = create_clinic(
            session,
            name="Demo Skin Clinic",
            sender="care@demo-clinic.example",
            phone="+1 555 010 0100",
            timezone=zone,
            after_hours="call +1 555 010 0199 and follow the message",
            default_campaign="microneedling",  # the demo patients' treatment
        )
        patients = [
            ("alex@example.com", "Alex", now - timedelta(hours=2, minutes=5)),
            ("sam@example.com", "Sam", now - timedelta(days=1, hours=2)),
            ("jordan@example.com", "Jordan", now - timedelta(days=3, hours=1)),
            ("riley@example.com", "Riley", now + timedelta(minutes=-118)),
        ]
        for email, name, treated_at in patients:
            enroll(
                session,
                EnrollRequest(
                    clinic_id=clinic.id,
                    email=email,
                    first_name=name,
                    treated_at=treated_at,
                    external_id=f"demo-{name}",
                ),
                settings,
                now,
            )
        password = secrets.token_urlsafe(12)
        create_admin_user(
            session, email=DEMO_ADMIN, password=password, clinic_id=clinic.id, platform=False
        )
        return Demo(clinic.id, create_key(session, clinic.id, "demo").plaintext, password)


def _capture_dir(smtp_url: str) -> Path | None:
    transport = transport_from_url(smtp_url)
    return transport.directory if isinstance(transport, CaptureTransport) else None


def serve_api_in_background(host: str, port: int) -> bool:
    """The REST API beside the worker, so `make run` shows everything; False if the port is
    taken (the rest of dripcare runs anyway)."""
    import uvicorn

    from dripcare.web.app import create_app
    from dripcare.web.serving import PortInUse, check_free

    try:
        check_free(host, port)
    except PortInUse:
        return False
    config = uvicorn.Config(
        create_app(), host=host, port=port, log_level="warning", access_log=False
    )
    threading.Thread(target=uvicorn.Server(config).run, daemon=True, name="api").start()
    return True


def point_links_at(host: str, port: int) -> None:
    """Emails' links lead to this server, unless DRIPCARE_BASE_URL says otherwise."""
    if "DRIPCARE_BASE_URL" not in os.environ:
        shown = "localhost" if host in ("127.0.0.1", "localhost") else host
        os.environ["DRIPCARE_BASE_URL"] = f"http://{shown}:{port}"
        get_settings.cache_clear()


def run_dev(seed: bool = True, host: str = "127.0.0.1", port: int = 8000) -> None:
    point_links_at(host, port)
    settings = get_settings()
    state_dir(settings)
    upgrade()
    reporter = ConsoleReport(settings.smtp_url, last_skipped=_last_skipped_id())
    if seed and (demo := seed_demo()) is not None:
        click.echo(
            f"seeded demo clinic {demo.clinic_id} with 4 patients (back-dated treatments)"
            f"\ndemo API key (shown once): {demo.api_key}"
            f"\nadmin sign-in (shown once): {DEMO_ADMIN} / {demo.admin_password}"
            f"  at http://{host}:{port}/admin"
        )
    click.echo(
        f"database: {without_passwords(settings.database_url)}\n"
        f"broker:   {without_passwords(settings.broker_url)}\n"
        f"emails:   {without_passwords(settings.smtp_url)}"
        f"  (every {settings.dispatch_interval:g}s)\n"
        f"links:    {settings.base_url}"
    )
    if serve_api_in_background(host, port):
        click.echo(f"API:      http://{host}:{port}/docs\nadmin:    http://{host}:{port}/admin")
    else:
        click.echo(f"API:      not started, port {port} is in use (try --port)")
    from celery.signals import task_postrun

    from dripcare.celery_app import DISPATCH_QUEUE, SEND_QUEUE, app, receiver

    @receiver(task_postrun, weak=False)
    def _report(sender: Any = None, retval: Any = None, **_: Any) -> None:
        reporter.after(getattr(sender, "name", ""), retval)

    app.conf.worker_redirect_stdouts = False

    app.worker_main(
        [
            "worker",
            "--beat",
            "--pool=solo",
            "--loglevel=WARNING",
            f"--queues={DISPATCH_QUEUE},{SEND_QUEUE}",
            f"--schedule={schedule_path(settings)}",
        ]
    )


def _last_skipped_id() -> int:
    with session_scope() as session:
        return session.scalar(select(func.max(Message.id))) or 0


class ConsoleReport:
    """What the dev console says after each task: emails sent, skipped and clinic alerts."""

    def __init__(self, smtp_url: str, last_skipped: int) -> None:
        self.smtp_url = without_passwords(smtp_url)  # printed in the console
        self.outbox = _capture_dir(smtp_url)
        self.last_skipped = last_skipped

    def after(self, task: str, retval: Any) -> None:
        if task == "dripcare.send_batch" and isinstance(retval, dict):
            click.echo(
                f"sent {retval['sent']} email(s) to {self._where()}; deferred "
                f"{retval['deferred']}, failed {retval['failed']}"
            )
        elif (
            task == "dripcare.deliver_alerts" and isinstance(retval, dict) and any(retval.values())
        ):
            click.echo(
                f"clinic alert(s) for red-flag check-ins: {retval['delivered']} delivered to "
                f"{self.smtp_url} or the clinic's webhook, {retval['deferred']} to retry"
            )
        elif task == "dripcare.dispatch":
            self._report_skipped()

    def _where(self) -> str:
        if self.outbox is None:
            return self.smtp_url
        return f"{self.outbox}/ ({len(list(self.outbox.glob('*.eml')))} .eml files in all)"

    def _report_skipped(self) -> None:
        """Emails that will never go out because they were too late when enrolled."""
        with session_scope() as session:
            rows = session.execute(
                select(Message.id, Message.enrollment_id, Message.status_reason)
                .where(Message.status == MessageStatus.SKIPPED, Message.id > self.last_skipped)
                .order_by(Message.id)
            ).all()
        if not rows:
            return
        self.last_skipped = rows[-1].id
        by_reason: dict[str, set[int]] = {}
        for row in rows:
            by_reason.setdefault(row.status_reason, set()).add(row.enrollment_id)
        for reason, ids in by_reason.items():
            count = sum(1 for r in rows if r.status_reason == reason)
            listed = ", ".join(str(i) for i in sorted(ids))
            click.echo(f"skipped {count} email(s), not sent: {reason} (enrollment {listed})")
