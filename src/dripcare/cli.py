"""The `dripcare` command. Scripts call it: output is stable and `--json` is machine-readable.

Every command runs in one transaction (nothing half-written on error) and reports bad input
as one line on stderr with exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dripcare.cli_admin import admin
from dripcare.cli_common import CommandGroup, emit, json_option, quiet_option, user_errors
from dripcare.cli_enrollment import enrollment
from dripcare.cli_health import health
from dripcare.cli_lifecycle import audit, patient_erase, patient_export, purge
from dripcare.cli_senders import (
    clinic_check_domain,
    clinic_dkim,
    clinic_domains,
    clinic_reseal_secrets,
    clinic_transport,
)
from dripcare.config import get_settings
from dripcare.content import campaign_versions, campaigns
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import Enrollment
from dripcare.outbox import enrollment_changes, enrollment_input, enrollment_queries, enrollments
from dripcare.people import clinics
from dripcare.people.audit import Actor


@click.group(cls=CommandGroup)
@click.version_option(package_name="dripcare")
def main() -> None:
    """dripcare: timed aftercare emails after a clinic treatment."""


main.add_command(admin)  # `dripcare admin …`, in its own module
main.add_command(health)  # `dripcare health api|worker|beat`, for container healthchecks
main.add_command(purge)  # `dripcare purge` and `dripcare audit`, in cli_lifecycle
main.add_command(audit)
main.add_command(enrollment)  # `dripcare enrollment next-session-booked|one-off ID`


# ---- database ---------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    from dripcare.migrations import upgrade

    upgrade()
    click.echo(f"database is up to date ({_safe_url(get_settings().database_url)})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---- clinics and campaigns ---------------------------------------------------------------------


@main.group()
def clinic() -> None:
    """Clinics."""


clinic.add_command(clinic_dkim)  # sending as each clinic: cli_senders
clinic.add_command(clinic_transport)
clinic.add_command(clinic_domains)
clinic.add_command(clinic_check_domain)
clinic.add_command(clinic_reseal_secrets)


_DEFAULT_CAMPAIGN_HELP = (
    "Campaign slug an enrollment that names none follows (needed once the clinic has several)."
)


@clinic.command("create")
@click.option("--name", required=True)
@click.option("--sender", required=True, help="From address, e.g. care@clinic.example")
@click.option("--phone", required=True)
@click.option("--timezone", required=True, help="IANA zone, e.g. Europe/London")
@click.option("--brand-color", default="#0f766e", show_default=True)
@click.option("--logo-url", default="")
@click.option("--opening-hours", default="Monday to Friday, 9am to 5pm", show_default=True)
@click.option("--after-hours", default="", help="What to do when the clinic is closed.")
@click.option(
    "--country",
    default="US",
    show_default=True,
    help="ISO 3166 code (GB, DE, AU ...); gives the emergency number patients are told to call.",
)
@click.option(
    "--emergency-number",
    default="",
    help="The clinic's own emergency number, instead of its country's.",
)
@click.option("--alert-email", default="", help="Where red-flag check-ins go (default: sender).")
@click.option("--webhook-url", default="", help="Also POST red-flag check-ins here (JSON).")
@click.option("--webhook-secret", default="", help="Signs webhooks; whsec_<base64>.")
@click.option("--default-campaign", default=None, help=_DEFAULT_CAMPAIGN_HELP)
@json_option
@quiet_option("the new clinic's id")
@user_errors
def clinic_create(as_json: bool, quiet: bool, **fields: str) -> None:
    """Create a clinic; the shipped campaigns are installed for it."""
    from dripcare.people.clinic_setup import create_clinic

    with session_scope() as session:
        created = create_clinic(session, **fields)
        data: dict[str, Any] = {
            "id": created.id,
            "name": created.name,
            "campaigns": [c.slug for c in campaigns.list_campaigns(session, created.id)],
            "default_campaign": created.default_campaign,
            "country": created.country,
            "emergency_number": created.emergency_number,
        }
    emit(
        as_json,
        data,
        f"clinic {data['id']} created: {data['name']} (campaigns: {', '.join(data['campaigns'])}; "
        f"emergency number {data['emergency_number']}, {data['country']})",
        only=data["id"] if quiet else None,
    )


@clinic.command("update")
@click.argument("clinic_id", type=int)
@click.option(
    "--default-campaign", required=True, help=_DEFAULT_CAMPAIGN_HELP + ' "none" clears it.'
)
@json_option
@user_errors
def clinic_update(clinic_id: int, default_campaign: str, as_json: bool) -> None:
    """Change a clinic's settings: for now, its default campaign."""
    with session_scope() as session:
        found = clinics.get_clinic(session, clinic_id)
        slug = None if default_campaign.strip().lower() == "none" else default_campaign.strip()
        found.default_campaign = campaigns.check_default_campaign(session, found.id, slug)
        data = {"id": found.id, "default_campaign": found.default_campaign}
    shown = data["default_campaign"] or "none (enrolling must name the campaign)"
    emit(as_json, data, f"clinic {clinic_id} default campaign: {shown}")


@clinic.command("list")
@json_option
def clinic_list(as_json: bool) -> None:
    """List clinics."""
    from dripcare.people.clinics import list_clinics

    with session_scope() as session:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "sender": c.sender_email,
                "timezone": c.timezone,
                "country": c.country,
                "emergency_number": c.emergency_number,
            }
            for c in list_clinics(session)
        ]
    emit(
        as_json,
        rows,
        "\n".join(f"{r['id']}\t{r['name']}\t{r['sender']}\t{r['timezone']}" for r in rows)
        or "no clinics yet",
    )


@clinic.command("quiet-hours")
@click.argument("clinic_id", type=int)
@click.argument("window", required=False)
@json_option
@user_errors
def clinic_quiet_hours(clinic_id: int, window: str | None, as_json: bool) -> None:
    """Show or set when no email reaches this clinic's patients, on each patient's clock.

    WINDOW is like 21:00-08:00; "default" goes back to DRIPCARE_QUIET_HOURS."""
    from dripcare.people.clinics import set_quiet_hours

    with session_scope() as session:
        found = clinics.get_clinic(session, clinic_id)
        if window is not None:
            set_quiet_hours(found, window)
        data = {"id": found.id, "quiet_hours": found.quiet_hours}
    effective = data["quiet_hours"] or f"{get_settings().quiet_hours} (DRIPCARE_QUIET_HOURS)"
    emit(as_json, data, f"clinic {clinic_id} quiet hours: {effective}")


@clinic.command("red-flags")
@click.argument("clinic_id", type=int)
@click.option("--ack-minutes", type=int, help="minutes to acknowledge before escalating")
@click.option("--open-hours", help='staffed hours, e.g. "Mon-Fri 09:00-18:00; Sat 10:00-14:00"')
@click.option("--escalate-to", multiple=True, help="an escalation email address (repeatable)")
@click.option("--escalation-webhook", help="a webhook URL for escalations")
@click.option("--after-hours-email", help="alerted at once outside opening hours")
@json_option
@user_errors
def clinic_red_flags(clinic_id: int, as_json: bool, **changes: Any) -> None:
    """Show or set how an unacknowledged red flag escalates (escalation.py)."""
    import dataclasses

    from dripcare.sending import escalation

    with session_scope() as session:
        found = clinics.get_clinic(session, clinic_id)
        current = escalation.settings_of(found)
        wanted = {k: v for k, v in changes.items() if v not in (None, ())}
        if "escalate_to" in wanted:
            wanted["escalation_emails"] = tuple(wanted.pop("escalate_to"))
        if wanted:
            escalation.set_escalation(found, dataclasses.replace(current, **wanted))
        data = {"id": found.id, **escalation.settings_of(found).to_json()}
    text = "\n".join(f"{k}: {v}" for k, v in data.items())
    emit(as_json, data, text)


@main.group()
def campaign() -> None:
    """Campaigns (email sequences per treatment)."""


@campaign.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--clinic", "clinic_id", type=int, required=True)
@json_option
@user_errors
def campaign_import(directory: Path, clinic_id: int, as_json: bool) -> None:
    """Import (or update) a campaign directory: campaign.toml + one MJML file per step."""
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory")
    spec = campaigns.load_campaign_dir(directory)
    with session_scope() as session:
        imported = campaign_versions.import_campaign(
            session, clinics.get_clinic(session, clinic_id), spec, Actor.cli()
        )
        data: dict[str, Any] = {
            "id": imported.id,
            "slug": imported.slug,
            "version": imported.version,
            "steps": [s.key for s in imported.steps if s.active],
        }
    emit(
        as_json,
        data,
        f"campaign {data['slug']} (id {data['id']}) at version {data['version']}"
        f" with {len(data['steps'])} steps",
    )


@campaign.command("list")
@click.option("--clinic", "clinic_id", type=int, required=True)
@json_option
@user_errors
def campaign_list(clinic_id: int, as_json: bool) -> None:
    """List a clinic's campaigns and their steps."""
    with session_scope() as session:
        clinics.get_clinic(session, clinic_id)
        rows: list[dict[str, Any]] = [
            {
                "slug": c.slug,
                "name": c.name,
                "version": c.version,
                "steps": [s.key for s in c.steps if s.active],
            }
            for c in campaigns.list_campaigns(session, clinic_id)
        ]
    emit(
        as_json,
        rows,
        "\n".join(f"{r['slug']}\tv{r['version']}\t{' '.join(r['steps'])}" for r in rows)
        or "no campaigns",
    )


@main.group()
def apikey() -> None:
    """API keys for the clinic REST API."""


@apikey.command("create")
@click.option("--clinic", "clinic_id", type=int, required=True)
@click.option("--name", default="", help="What the key is for, e.g. 'booking system'.")
@json_option
@quiet_option("the key")
@user_errors
def apikey_create(clinic_id: int, name: str, as_json: bool, quiet: bool) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    from dripcare.people.apikeys import create_key

    with session_scope() as session:
        clinics.get_clinic(session, clinic_id)
        issued = create_key(session, clinic_id, name, Actor.cli())
        data = {"id": issued.key.id, "clinic_id": clinic_id, "key": issued.plaintext}
    emit(
        as_json,
        data,
        f"{issued.plaintext}\n(key {data['id']} for clinic {clinic_id}; "
        "store it now, it is not shown again)",
        only=issued.plaintext if quiet else None,
    )


@apikey.command("list")
@click.option("--clinic", "clinic_id", type=int, required=True)
@json_option
def apikey_list(clinic_id: int, as_json: bool) -> None:
    """List a clinic's keys (prefixes only)."""
    from dripcare.people.apikeys import list_keys

    with session_scope() as session:
        rows = [
            {
                "id": k.id,
                "prefix": k.prefix,
                "name": k.name,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in list_keys(session, clinic_id)
        ]
    emit(
        as_json,
        rows,
        "\n".join(
            f"{r['id']}\tdc_{r['prefix']}_…\t{r['name']}\t"
            f"{'revoked' if r['revoked_at'] else 'live'}"
            for r in rows
        )
        or "no keys",
    )


@apikey.command("revoke")
@click.argument("key")
@json_option
@user_errors
def apikey_revoke(key: str, as_json: bool) -> None:
    """Revoke a key, named by its id or by the key itself: requests with it get 401 from now on."""
    from dripcare.people.apikeys import authenticate, revoke_key

    with session_scope() as session:
        if key.isdigit():
            key_id = int(key)
        elif (caller := authenticate(session, key.strip())) is not None:
            key_id = caller.key_id
        else:
            raise UserError("that is no live API key; give the key's id (`dripcare apikey list`)")
        revoked = revoke_key(session, key_id, Actor.cli())
        when = revoked.revoked_at
        data = {"id": revoked.id, "revoked_at": when.isoformat() if when else None}
    emit(as_json, data, f"key {key_id} revoked")


# ---- patients ---------------------------------------------------------------------------------


@main.group()
def patient() -> None:
    """Patients."""


patient.add_command(patient_export)  # `dripcare patient export|erase`, in cli_lifecycle
patient.add_command(patient_erase)


@patient.command("revoke-links")
@click.option("--clinic", "clinic_id", type=int, required=True)
@click.option("--email", required=True, help="The patient's email address.")
@json_option
@user_errors
def patient_revoke_links(clinic_id: int, email: str, as_json: bool) -> None:
    """Void the unsubscribe, preferences and check-in links of every email sent to a patient
    so far (e.g. an email was forwarded); emails sent from now on carry new links."""
    from dripcare.people import links
    from dripcare.people.patients import find_by_email

    with session_scope() as session:
        clinics.get_clinic(session, clinic_id)
        found = find_by_email(session, clinic_id, email)
        if found is None:
            raise UserError(f"clinic {clinic_id} has no patient with email {email.strip()}")
        data = {
            "clinic_id": clinic_id,
            "patient_id": found.id,
            "email": found.email,
            "link_epoch": links.revoke(session, found),
        }
    emit(
        as_json,
        data,
        f"links sent to {data['email']} so far no longer work (patient {data['patient_id']}); "
        "emails sent from now on carry new links",
    )


# ---- enrollments ------------------------------------------------------------------------------


@main.command()
@click.option("--clinic", "clinic_id", type=int, required=True)
@click.option("--email", required=True)
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option(
    "--treatment",
    "campaign_slug",
    default=None,
    help="Campaign slug (default: the clinic's default campaign, or its only one).",
)
@click.option(
    "--treated-at",
    required=True,
    help="ISO date or date-time (2026-11-24T14:30), or today/yesterday with HH:MM, or now.",
)
@click.option("--timezone", default=None, help="Patient's IANA zone (default: the clinic's).")
@click.option("--external-id", default=None, help="Your booking id; makes re-sending safe.")
@click.option("--phone", default="", help="Patient's phone, international (+44 20 7946 0958).")
@click.option(
    "--peel-depth",
    default=None,
    help="How deep the clinic classes the peel; the chemical peel campaign needs superficial.",
)
@json_option
@quiet_option("the enrollment's id")
@user_errors
def enroll(
    *,
    clinic_id: int,
    email: str,
    first_name: str,
    last_name: str,
    campaign_slug: str | None,
    treated_at: str,
    timezone: str | None,
    external_id: str | None,
    phone: str,
    peel_depth: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Enroll a patient's treatment: schedules the whole aftercare sequence (a treatment
    time ahead schedules the pre-care emails too)."""
    request = enrollment_input.EnrollRequest(
        clinic_id=clinic_id,
        email=email,
        first_name=first_name,
        last_name=last_name,
        campaign=campaign_slug,
        treated_at=treated_at,
        timezone=timezone,
        external_id=external_id,
        phone=phone,
        attributes={"peel_depth": peel_depth} if peel_depth else {},
    )
    with session_scope() as session:
        result = enrollments.enroll(session, request, get_settings())
        data = _timeline_data(session, result.enrollment)
        data |= {"created": result.created, "superseded": result.superseded}
    verb = "enrolled" if result.created else "already enrolled (nothing changed)"
    text = f"{verb}: enrollment {data['id']}\n{_timeline_text(data)}"
    emit(as_json, data, text, only=data["id"] if quiet else None)


@main.command()
@click.argument("enrollment_id", type=int)
@json_option
@user_errors
def cancel(enrollment_id: int, as_json: bool) -> None:
    """Cancel an enrollment: every unsent message is stopped."""
    with session_scope() as session:
        stopped = enrollment_changes.cancel(
            session, enrollment_queries.get_enrollment(session, enrollment_id)
        )
    emit(
        as_json,
        {"id": enrollment_id, "cancelled_messages": stopped},
        f"enrollment {enrollment_id} cancelled; {stopped} unsent messages stopped",
    )


@main.command()
@click.argument("enrollment_id", type=int)
@click.option("--treated-at", required=True)
@json_option
@user_errors
def reschedule(enrollment_id: int, treated_at: str, as_json: bool) -> None:
    """Change the treatment time; unsent messages move with it."""
    with session_scope() as session:
        enrollment = enrollment_queries.get_enrollment(session, enrollment_id)
        moved = enrollment_changes.reschedule(session, enrollment, treated_at, get_settings())
        data = _timeline_data(session, enrollment) | {"moved": moved}
    emit(as_json, data, f"{moved} messages rescheduled\n{_timeline_text(data)}")


@main.command()
@click.argument("enrollment_id", type=int)
@json_option
@user_errors
def timeline(enrollment_id: int, as_json: bool) -> None:
    """Show an enrollment's messages: when each is due (UTC and local) and its status."""
    with session_scope() as session:
        data = _timeline_data(session, enrollment_queries.get_enrollment(session, enrollment_id))
    emit(as_json, data, _timeline_text(data))


def _timeline_data(session: Any, enrollment: Enrollment) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(enrollment.timezone)
    messages = enrollment_queries.timeline(session, enrollment)
    return {
        "id": enrollment.id,
        "status": enrollment.status.value,
        "patient_id": enrollment.patient_id,
        "campaign": enrollment.campaign.slug,
        "treated_at": enrollment.treated_at.isoformat(),
        "timezone": enrollment.timezone,
        "messages": [
            {
                "id": m.id,
                "step": m.step.key,
                "due_at": m.due_at.isoformat(),
                "due_local": m.due_at.astimezone(zone).isoformat(),
                "status": m.status.value,
                "reason": m.status_reason,
                "attempts": m.attempts,
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            }
            for m in messages
        ],
    }


def _timeline_text(data: dict[str, Any]) -> str:
    head = (
        f"enrollment {data['id']} ({data['campaign']}, {data['status']}), treated "
        f"{data['treated_at']}, zone {data['timezone']}"
    )
    rows = [
        f"  {m['step']:<8} {m['due_local'][:16].replace('T', ' ')} local  "
        f"{m['status']:<9} {m['reason']}".rstrip()
        for m in data["messages"]
    ]
    return "\n".join([head, *rows])


@main.command("import-csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--clinic", "clinic_id", type=int, required=True)
@json_option
@user_errors
def import_csv(file: Path, clinic_id: int, as_json: bool) -> None:
    """Enroll many patients from a CSV file (email, first_name, last_name, treated_at,
    timezone, treatment, external_id, phone). Bad rows are reported; good rows go in."""
    from dripcare.outbox.csv_import import import_file

    with session_scope() as session:
        clinics.get_clinic(session, clinic_id)
    with click.progressbar(
        length=_count_lines(file), label="importing", file=sys.stderr, show_pos=True
    ) as bar:
        report = import_file(file, clinic_id, get_settings(), progress=bar.update)
    data = report.as_dict()
    lines = [
        f"{report.created} enrolled, {report.existing} already enrolled, "
        f"{len(report.errors)} rejected"
    ]
    lines += [f"  line {e.line}: {e.reason}" for e in report.errors]
    emit(as_json, data, "\n".join(lines))
    if report.errors:
        sys.exit(1)


def _count_lines(file: Path) -> int:
    with file.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


# ---- operations -------------------------------------------------------------------------------


@main.command()
@json_option
def status(as_json: bool) -> None:
    """Message counts by status, and when the next one is due."""
    from dripcare.outbox.reporting import outbox_status

    with session_scope() as session:
        counts, next_due = outbox_status(session)
    data = {"counts": counts, "next_due_at": next_due.isoformat() if next_due else None}
    if as_json:
        emit(True, counts | {"next_due_at": data["next_due_at"]}, "")
        return
    text = "  ".join(f"{name}: {n}" for name, n in counts.items())
    emit(False, data, f"{text}\nnext due: {data['next_due_at'] or 'nothing scheduled'}")


@main.command()
@click.argument("campaign_slug")
@click.argument("step_key")
@click.option(
    "--clinic",
    "clinic_id",
    type=int,
    default=None,
    help="Render with this clinic's branding and campaign (default: the shipped files).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the files (default: preview/ in DRIPCARE_STATE_DIR).",
)
@json_option
@user_errors
def preview(
    campaign_slug: str, step_key: str, clinic_id: int | None, out_dir: Path | None, as_json: bool
) -> None:
    """Render one step with sample data; writes STEP.html and STEP.txt."""
    from dripcare.content.previews import render_preview
    from dripcare.state import state_dir

    rendered = render_preview(campaign_slug, step_key, clinic_id)
    out_dir = out_dir or state_dir(get_settings()) / "preview"
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, text_path = out_dir / f"{step_key}.html", out_dir / f"{step_key}.txt"
    html_path.write_text(rendered.html, encoding="utf-8")
    text_path.write_text(rendered.text, encoding="utf-8")
    data = {"subject": rendered.subject, "html": str(html_path), "text": str(text_path)}
    emit(as_json, data, f"subject: {rendered.subject}\nwrote {html_path} and {text_path}")


@main.command()
@click.option("--loop", is_flag=True, help="Keep dispatching every DRIPCARE_DISPATCH_INTERVAL.")
@json_option
@user_errors
def send(loop: bool, as_json: bool) -> None:
    """Send what is due now in this process, without Celery (cron-style, or for debugging).

    Emails behind a paused transport wait; everything else goes. Exit status 1 when some
    stayed paused (each listed with the reason), 0 otherwise."""
    from dripcare.outbox.dispatch import paused_backlog
    from dripcare.sending.delivery import send_due
    from dripcare.sending.transports import transport_from_url

    settings = get_settings()
    while True:
        result: dict[str, Any] = send_due(
            session_scope, settings, transport_from_url(settings.smtp_url, settings.smtp_timeout)
        )
        with session_scope() as session:
            paused = [p.to_json() for p in paused_backlog(session)]
        text = "  ".join(f"{k}: {v}" for k, v in result.items())
        for p in paused:
            text += (
                f"\npaused: {p['waiting']} email(s) wait for transport {p['transport']} "
                f"(next try {p['probe_at'] or 'soon'}): {p['reason']}"
            )
        emit(as_json, result | {"paused": paused}, text)
        if not loop:
            sys.exit(1 if paused else 0)
        import time

        time.sleep(get_settings().dispatch_interval)


@main.command()
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    envvar="ORIGINAL_RECIPIENT",
    help="Where the mail server delivered it (default: $ORIGINAL_RECIPIENT, as Postfix sets).",
)
@json_option
@user_errors
def inbound(recipients: tuple[str, ...], as_json: bool) -> None:
    """Process one email (RFC 5322 message on stdin): a bounce (DSN) or complaint (ARF) report
    sent to the bounce address, or a mail sent to the unsubscribe mailbox.

    Wire it to your mail server, e.g. Postfix aliases: `unsubscribe: "|dripcare inbound"` and
    `bounces: "|dripcare inbound"` (with recipient_delimiter = +).
    """
    from dripcare.sending.inbound import process_report, process_unsubscribe_mail, summary

    raw = sys.stdin.buffer.read()
    applied = process_report(raw, get_settings(), recipients)
    if applied is not None:
        data = summary(applied)
        emit(as_json, data, "  ".join(f"{k}: {v}" for k, v in data.items()))
        return
    result = process_unsubscribe_mail(raw, get_settings())
    data = {
        "unsubscribed": result is not None,
        "cancelled_messages": result.cancelled if result else 0,
    }
    if result is None:
        raise UserError("no valid unsubscribe token in that message; nothing changed")
    emit(as_json, data, f"unsubscribed; {result.cancelled} unsent messages cancelled")


# ---- processes --------------------------------------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes.")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@user_errors
def worker(concurrency: int | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (send batches and dispatcher ticks). Run as many as you like."""
    get_settings().check_process_secret()
    from dripcare.celery_app import DISPATCH_QUEUE, SEND_QUEUE, app

    argv = ["worker", "--loglevel=INFO", f"--queues={DISPATCH_QUEUE},{SEND_QUEUE}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main([*argv, *celery_args])


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@user_errors
def beat(celery_args: tuple[str, ...]) -> None:
    """Run the scheduler that starts a dispatcher tick every DRIPCARE_DISPATCH_INTERVAL.

    Its schedule and heartbeat go to DRIPCARE_STATE_DIR, never the working directory.
    """
    from dripcare.beat import HeartbeatScheduler, schedule_path
    from dripcare.celery_app import app
    from dripcare.state import state_dir

    settings = get_settings()
    settings.check_process_secret()
    state_dir(settings)
    scheduler = f"{HeartbeatScheduler.__module__}:{HeartbeatScheduler.__name__}"
    argv = ["beat", "--loglevel=INFO", f"--schedule={schedule_path(settings)}"]
    app.start([*argv, f"--scheduler={scheduler}", *celery_args])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes; on Linux each listens on its own socket (SO_REUSEPORT).",
)
@user_errors
def serve(host: str, port: int, workers: int) -> None:
    """Serve the clinic REST API (docs at /docs, OpenAPI at /openapi.json)."""
    get_settings().check_process_secret(host)
    from dripcare.web.serving import serve as run

    run(host, port, workers)


@main.command()
@click.option("--no-demo", is_flag=True, help="Do not seed the demo clinic and patients.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port of the API.")
def dev(no_demo: bool, port: int) -> None:
    """Everything in one process on the embedded default: SQLite, embedded broker, worker and
    beat, emails written to ./var/outbox/ as .eml files."""
    from dripcare.devserver import run_dev

    run_dev(seed=not no_demo, port=port)


if __name__ == "__main__":
    main()
