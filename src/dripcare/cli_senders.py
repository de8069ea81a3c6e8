"""`dripcare clinic dkim|transport|domains|check-domain`: how each clinic's email is sent and
signed (kept apart from cli.py's size). Secrets are never printed back."""

from __future__ import annotations

import click

from dripcare.cli_common import emit, json_option, user_errors
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.people.clinics import get_clinic


@click.command("dkim")
@click.option("--clinic", "clinic_id", type=int, required=True)
@click.option("--domain", default="", help="Default: the domain of the clinic's sender.")
@click.option("--selector", default="", help="Default: dc<today>, e.g. dc20261201.")
@json_option
@user_errors
def clinic_dkim(clinic_id: int, domain: str, selector: str, as_json: bool) -> None:
    """Make a DKIM key (RSA 2048) for the clinic and print the DNS record to publish.

    Emails from the clinic are signed with it from now on: publish the record first.
    """
    from dripcare.sending import dkim_keys

    with session_scope() as session:
        clinic = get_clinic(session, clinic_id)
        key = dkim_keys.generate(session, get_settings(), clinic, domain, selector)
        data = dkim_keys.record_fields(key)
    emit(
        as_json,
        data,
        f"DKIM key {data['selector']} made for {data['domain']}. Publish this DNS record:\n"
        f"{dkim_keys.dns_record(key)}",
    )


@click.command("transport")
@click.option("--clinic", "clinic_id", type=int, required=True)
@click.option(
    "--smtp-url",
    default="",
    help="smtp://user:pass@host:587?starttls=true, smtps://…, or env:NAME to read it from "
    "the workers' environment. Stored encrypted; never printed.",
)
@click.option("--clear", is_flag=True, help="Send through the platform's server again.")
@json_option
@user_errors
def clinic_transport(clinic_id: int, smtp_url: str, clear: bool, as_json: bool) -> None:
    """Where the clinic's emails are sent from: its own SMTP server or the platform's.

    Without --smtp-url or --clear, shows the current one (password hidden).
    """
    from dripcare.errors import UserError
    from dripcare.sending import clinic_transports

    if smtp_url and clear:
        raise UserError("give --smtp-url or --clear, not both")
    settings = get_settings()
    with session_scope() as session:
        clinic = get_clinic(session, clinic_id)
        if smtp_url:
            clinic_transports.set_smtp_url(session, settings, clinic, smtp_url)
        elif clear:
            clinic_transports.clear_smtp_url(session, clinic)
        where = clinic_transports.describe(session, settings, clinic)
    emit(
        as_json,
        {"clinic": clinic_id, "sends_through": where},
        f"clinic {clinic_id} sends through {where}",
    )


@click.command("domains")
@click.option("--clinic", "clinic_id", type=int, required=True)
@click.option("--add", "added", multiple=True, help="Let the clinic send from this domain.")
@click.option("--remove", "removed", multiple=True, help="No longer let it send from this one.")
@json_option
@user_errors
def clinic_domains(
    clinic_id: int, added: tuple[str, ...], removed: tuple[str, ...], as_json: bool
) -> None:
    """The domains a clinic may use in its sender address (platform administrators only:
    check that the clinic owns a domain before adding it)."""
    from dripcare.sending import sending_domains

    with session_scope() as session:
        clinic = get_clinic(session, clinic_id)
        for domain in added:
            sending_domains.assign(session, clinic, domain)
        for domain in removed:
            sending_domains.revoke(session, clinic, domain)
        domains = sending_domains.domains_of(session, clinic_id)
    text = f"clinic {clinic_id} may send from: {', '.join(domains) or 'no domain'}"
    emit(as_json, {"clinic": clinic_id, "domains": domains}, text)


@click.command("check-domain")
@click.option("--clinic", "clinic_id", type=int, default=None)
@click.option("--domain", default="", help="Default: every sending domain of the clinic.")
@click.option("--nameserver", default="", help="Ask this DNS server (HOST or HOST:PORT).")
@json_option
@user_errors
def clinic_check_domain(clinic_id: int | None, domain: str, nameserver: str, as_json: bool) -> None:
    """Check the SPF, DKIM and DMARC records of the clinic's sending domains (or of --domain)
    in DNS, and say what to publish. Exits with 1 when something is missing or wrong."""
    from dataclasses import asdict

    from dripcare.errors import UserError
    from dripcare.sending import domain_checks

    if clinic_id is None and not domain:
        raise UserError("give --clinic ID, --domain DOMAIN, or both")
    resolver = domain_checks.resolver_for(nameserver)
    with session_scope() as session:
        if clinic_id is not None:
            get_clinic(session, clinic_id)
        results = domain_checks.check_clinic(session, resolver, clinic_id, domain)
    lines = []
    for name, findings in results.items():
        lines.append(name)
        for f in findings:
            lines.append(f"  {f.record:<14} {f.status.value:<8} {f.advice or f.found}")
    data = {name: [asdict(f) for f in findings] for name, findings in results.items()}
    emit(as_json, data, "\n".join(lines) or f"clinic {clinic_id} has no sending domain")
    if not domain_checks.all_ok(results):
        raise SystemExit(1)


@click.command("reseal-secrets")
@user_errors
def clinic_reseal_secrets() -> None:
    """Encrypt every clinic's stored secrets again with the first DRIPCARE_SECRETS_KEY (after
    putting a new key first); then the old keys can be removed."""
    from dripcare import secrets_box

    with session_scope() as session:
        count = secrets_box.reseal_all(session, get_settings())
    click.echo(f"{count} secrets sealed with the newest key; the older keys can now be removed")
