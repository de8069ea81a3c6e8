"""`dripcare clinic dkim|transport|domains|check-domain`: how each clinic's email is sent and
signed (kept apart from cli.py's size). Secrets are never printed back."""

from __future__ import annotations

import click

from dripcare.cli_common import emit, json_option, user_errors
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.enrollments import get_clinic


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
    from dripcare import dkim_keys

    with session_scope() as session:
        clinic = get_clinic(session, clinic_id)
        key = dkim_keys.generate(session, get_settings(), clinic, domain, selector)
        data = {
            "domain": key.domain,
            "selector": key.selector,
            "name": dkim_keys.dns_name(key),
            "type": "TXT",
            "value": dkim_keys.dns_value(key),
        }
    emit(
        as_json,
        data,
        f"DKIM key {data['selector']} made for {data['domain']}. Publish this DNS record:\n"
        f"{dkim_keys.dns_record(key)}",
    )
