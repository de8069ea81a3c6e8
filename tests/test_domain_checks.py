"""`dripcare clinic check-domain`: SPF, DKIM and DMARC read from a local DNS server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from dripcare.cli import main
from dripcare.config import Settings
from tests.dns_server import LocalDNS
from tests.factories import make_clinic

DOMAIN = "riverside.example"


@pytest.fixture
def dns_server() -> Iterator[LocalDNS]:
    server = LocalDNS().start()
    yield server
    server.stop()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["clinic", *args], catch_exceptions=False)


def check(dns_server: LocalDNS, clinic: int) -> tuple[int, dict[str, dict[str, str]]]:
    result = cli(
        "check-domain", "--clinic", str(clinic), "--nameserver", dns_server.nameserver, "--json"
    )
    findings = json.loads(result.output)[DOMAIN]
    return result.exit_code, {f["record"]: f for f in findings}


def test_nothing_published_says_what_to_publish(settings: Settings, dns_server: LocalDNS) -> None:
    clinic = make_clinic()
    key = json.loads(cli("dkim", "--clinic", str(clinic), "--selector", "s1", "--json").output)

    code, found = check(dns_server, clinic)

    assert code == 1
    assert {r: f["status"] for r, f in found.items()} == {
        "SPF": "missing",
        "DKIM s1": "missing",
        "DMARC": "missing",
    }
    assert f'publish s1._domainkey.{DOMAIN} TXT "{key["value"]}"' == found["DKIM s1"]["advice"]
    assert found["DMARC"]["advice"].startswith(f'publish _dmarc.{DOMAIN} TXT "v=DMARC1; p=none')
    assert "v=spf1" in found["SPF"]["advice"]


def test_all_published_is_all_ok(settings: Settings, dns_server: LocalDNS) -> None:
    clinic = make_clinic()
    key = json.loads(cli("dkim", "--clinic", str(clinic), "--selector", "s1", "--json").output)
    dns_server.zone.txt[DOMAIN] = [
        "google-site-verification=abc",
        "v=spf1 include:_spf.mail.example ~all",
    ]
    dns_server.zone.txt[f"s1._domainkey.{DOMAIN}"] = [key["value"]]  # longer than 255: split
    dns_server.zone.txt[f"_dmarc.{DOMAIN}"] = ["v=DMARC1; p=quarantine"]

    code, found = check(dns_server, clinic)

    assert code == 0
    assert {f["status"] for f in found.values()} == {"ok"}


def test_wrong_records_are_named_with_the_fix(settings: Settings, dns_server: LocalDNS) -> None:
    clinic = make_clinic()
    cli("dkim", "--clinic", str(clinic), "--selector", "s1")
    dns_server.zone.txt[DOMAIN] = ["v=spf1 a ~all", "v=spf1 mx ~all"]
    dns_server.zone.txt[f"s1._domainkey.{DOMAIN}"] = ["v=DKIM1; k=rsa; p=MIIBold"]
    dns_server.zone.txt[f"_dmarc.{DOMAIN}"] = ["v=DMARC1; rua=mailto:x@riverside.example"]

    code, found = check(dns_server, clinic)

    assert code == 1
    assert "merge them into one record" in found["SPF"]["advice"]
    assert "another key than dripcare signs with" in found["DKIM s1"]["advice"]
    assert "no p= policy" in found["DMARC"]["advice"]


def test_a_domain_without_a_dkim_key_says_how_to_make_one(
    settings: Settings, dns_server: LocalDNS
) -> None:
    code, found = check(dns_server, make_clinic())
    assert code == 1
    assert "make one with dripcare clinic dkim" in found["DKIM"]["advice"]


def test_a_domain_alone_is_checked_with_the_keys_any_clinic_has_for_it(
    settings: Settings, dns_server: LocalDNS
) -> None:
    clinic = make_clinic()
    key = json.loads(cli("dkim", "--clinic", str(clinic), "--selector", "s1", "--json").output)
    dns_server.zone.txt[f"s1._domainkey.{DOMAIN}"] = [key["value"]]

    result = cli("check-domain", "--domain", DOMAIN, "--nameserver", dns_server.nameserver)

    assert result.exit_code == 1  # no SPF, no DMARC
    assert f"DKIM s1        ok       {key['value']}" in result.output
    assert "SPF            missing  publish riverside.example TXT" in result.output


def test_neither_clinic_nor_domain_says_what_to_give(settings: Settings) -> None:
    result = cli("check-domain")
    assert result.exit_code == 2 and "give --clinic ID, --domain DOMAIN, or both" in result.output
