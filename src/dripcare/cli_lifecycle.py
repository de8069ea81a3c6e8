"""`dripcare patient export|erase`, `dripcare purge` and `dripcare audit`: the data's life cycle.

Each command calls one domain function (patient_export, erasure, retention, audit) and is
recorded in the audit log as the operating-system user who ran it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy.orm import Session

from dripcare.cli_common import emit, json_option, user_errors
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.errors import NotFound
from dripcare.models import Patient, utcnow
from dripcare.outbox.retention import parse_age
from dripcare.outbox.retention import purge as purge_rows
from dripcare.people import audit as audit_log
from dripcare.people.audit import Actor
from dripcare.people.erasure import erase
from dripcare.people.patient_export import export_patient


def _clinic_of(session: Session, patient_id: int) -> int:
    """An operator serves every clinic: the patient's own."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"no patient with id {patient_id}; find it with the API or the admin")
    return patient.clinic_id


@click.command("export")
@click.argument("patient_id", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON to this file instead of printing it.",
)
@user_errors
def patient_export(patient_id: int, output: Path | None) -> None:
    """Everything held about a patient, as JSON (for a patient's access request)."""
    with session_scope() as session:
        data = export_patient(session, _clinic_of(session, patient_id), patient_id, Actor.cli())
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(f"patient {patient_id} exported to {output}")


@click.command("erase")
@click.argument("patient_id", type=int)
@click.option("--yes", is_flag=True, help="Confirm: erasure cannot be undone.")
@json_option
@user_errors
def patient_erase(patient_id: int, yes: bool, as_json: bool) -> None:
    """Erase a patient's personal data and cancel their unsent emails (cannot be undone)."""
    if not yes:
        raise click.UsageError(
            f"erasing patient {patient_id} cannot be undone: export it first if needed "
            f"(dripcare patient export {patient_id} -o patient-{patient_id}.json), then run "
            "this again with --yes"
        )
    with session_scope() as session:
        done = erase(session, _clinic_of(session, patient_id), patient_id, Actor.cli())
    data = {
        "patient_id": done.patient_id,
        "erased_at": done.erased_at.isoformat(),
        "messages_cancelled": done.messages_cancelled,
        "already_erased": done.already_erased,
    }
    text = (
        f"patient {patient_id} was already erased on {done.erased_at:%Y-%m-%d}"
        if done.already_erased
        else f"patient {patient_id} erased; {done.messages_cancelled} unsent emails cancelled"
    )
    emit(as_json, data, text)


@click.command()
@click.option(
    "--older-than",
    required=True,
    help="Age of the rows to delete, e.g. 400d (days) or 58w (weeks).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 50_000),
    default=None,
    help="Rows per transaction (default: DRIPCARE_RETENTION_BATCH_SIZE).",
)
@json_option
@user_errors
def purge(older_than: str, dry_run: bool, batch_size: int | None, as_json: bool) -> None:
    """Delete finished emails, check-ins, sessions and stored API answers older than a cutoff.

    Suppressions, patients, enrollments and the audit log are kept; nothing of a treatment
    with emails still to send is touched.
    """
    cutoff = utcnow() - parse_age(older_than)
    size = batch_size or get_settings().retention_batch_size
    result = purge_rows(session_scope, cutoff, batch_size=size, actor=Actor.cli(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    lines = [f"{verb} {n}\t{table}" for table, n in result.counts.items()]
    emit(
        as_json,
        {"cutoff": cutoff.isoformat(), "dry_run": dry_run, "counts": result.counts},
        f"rows last changed before {cutoff:%Y-%m-%d %H:%M} UTC:\n" + "\n".join(lines),
    )


@click.command()
@click.option("--clinic", "clinic_id", type=int, default=None, help="Only this clinic's events.")
@click.option("--action", default="", help="Only this action, e.g. patient.erase.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
def audit(clinic_id: int | None, action: str, limit: int, as_json: bool) -> None:
    """Who did what, newest first: publishes, API keys, sign-ins, exports, erasures, purges."""
    with session_scope() as session:
        events = audit_log.events(session, clinic_id, limit=limit, action=action)
        rows = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "clinic_id": e.clinic_id,
                "actor_kind": e.actor_kind.value,
                "actor": e.actor,
                "action": e.action,
                "target": f"{e.target_kind} {e.target_id}".strip(),
                "detail": e.detail,
            }
            for e in events
        ]
    text = "\n".join(
        f"{str(r['at'])[:19]}\t{r['clinic_id'] or '-'}\t{r['actor_kind']}:{r['actor']}\t"
        f"{r['action']}\t{r['target']}\t{r['detail']}"
        for r in rows
    )
    emit(as_json, rows, text or "no events")
