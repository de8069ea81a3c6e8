"""Is a sending domain ready? Its SPF, DKIM and DMARC records, read from DNS, with what is
missing and what to publish. Gmail and Yahoo require all three from bulk senders (2024), and
DMARC needs SPF or DKIM aligned with the From domain, which dripcare's DKIM signature is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.resolver
from sqlalchemy.orm import Session

from dripcare.models import DkimKey
from dripcare.sending import dkim_keys, sending_domains

TIMEOUT_SECONDS = 5.0


class Status(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG = "wrong"
    UNKNOWN = "unknown"  # DNS did not answer


@dataclass(frozen=True)
class Finding:
    record: str  # SPF, DKIM <selector>, DMARC
    name: str  # the DNS name it lives at
    status: Status
    found: str  # what DNS holds now (joined TXT strings), "" when none
    advice: str  # what to do, "" when all is well


def resolver_for(nameserver: str = "") -> dns.resolver.Resolver:
    """The system's resolver, or one asking only `nameserver` (HOST or HOST:PORT)."""
    if not nameserver:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = nameserver.partition(":")
        resolver.nameservers = [host]
        resolver.port = int(port or 53)
    resolver.lifetime = TIMEOUT_SECONDS
    return resolver


def _no_answer(name: str) -> str:
    return (
        f"DNS did not answer for {name}: check again in a few minutes; if it keeps failing, "
        "make sure the domain is registered and its name servers answer"
    )


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str] | None:
    """The TXT records at `name` (each one's strings joined); None when DNS did not answer."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException:
        return None
    return [b"".join(r.strings).decode(errors="replace") for r in answer]


def check_spf(resolver: dns.resolver.Resolver, domain: str) -> Finding:
    found = _txt(resolver, domain)
    publish = (
        f'publish {domain} TXT "v=spf1 include:<your mail provider\'s SPF domain> ~all" '
        "(or ip4:<your mail server's address> in place of the include)"
    )
    if found is None:
        return Finding("SPF", domain, Status.UNKNOWN, "", _no_answer(domain))
    spf = [txt for txt in found if txt.lower().startswith("v=spf1")]
    if not spf:
        return Finding("SPF", domain, Status.MISSING, "", publish)
    if len(spf) > 1:
        advice = "merge them into one record: receivers treat two SPF records as an error"
        return Finding("SPF", domain, Status.WRONG, " | ".join(spf), advice)
    if spf[0].rstrip().lower().endswith(("+all", " all")):
        advice = "end it with ~all or -all: +all lets anyone send as this domain"
        return Finding("SPF", domain, Status.WRONG, spf[0], advice)
    return Finding("SPF", domain, Status.OK, spf[0], "")


def _tags(record: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in record.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def check_dkim(resolver: dns.resolver.Resolver, key: DkimKey) -> Finding:
    name = f"{key.selector}._domainkey.{key.domain}"
    record = f"v=DKIM1; k=rsa; p={key.public_key}"
    publish = f'publish {name} TXT "{record}"'
    found = _txt(resolver, name)
    if found is None:
        return Finding(f"DKIM {key.selector}", name, Status.UNKNOWN, "", _no_answer(name))
    if not found:
        return Finding(f"DKIM {key.selector}", name, Status.MISSING, "", publish)
    published = "".join(_tags(found[0]).get("p", "").split())
    if published != key.public_key:
        advice = f"it holds another key than dripcare signs with: {publish}"
        return Finding(f"DKIM {key.selector}", name, Status.WRONG, found[0], advice)
    return Finding(f"DKIM {key.selector}", name, Status.OK, found[0], "")


def check_dmarc(resolver: dns.resolver.Resolver, domain: str) -> Finding:
    name = f"_dmarc.{domain}"
    publish = (
        f'publish {name} TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}" '
        "(then p=quarantine once the reports show only your own mail)"
    )
    found = _txt(resolver, name)
    if found is None:
        return Finding("DMARC", name, Status.UNKNOWN, "", _no_answer(name))
    dmarc = [txt for txt in found if txt.lower().startswith("v=dmarc1")]
    if not dmarc:
        return Finding("DMARC", name, Status.MISSING, "", publish)
    if "p" not in _tags(dmarc[0]):
        advice = f"it has no p= policy, so receivers ignore it: {publish}"
        return Finding("DMARC", name, Status.WRONG, dmarc[0], advice)
    return Finding("DMARC", name, Status.OK, dmarc[0], "")


def check_domain(
    resolver: dns.resolver.Resolver, domain: str, keys: Iterable[DkimKey]
) -> list[Finding]:
    """SPF, then DKIM for each selector dripcare has a key for, then DMARC."""
    findings = [check_spf(resolver, domain)]
    own_keys = [key for key in keys if key.domain == domain]
    findings += [check_dkim(resolver, key) for key in own_keys]
    if not own_keys:
        advice = "no DKIM key for this domain yet: make one with dripcare clinic dkim"
        findings.append(
            Finding("DKIM", f"<selector>._domainkey.{domain}", Status.MISSING, "", advice)
        )
    findings.append(check_dmarc(resolver, domain))
    return findings


def check_clinic(
    session: Session, resolver: dns.resolver.Resolver, clinic_id: int | None, domain: str = ""
) -> dict[str, list[Finding]]:
    """The findings for `domain`, or for every sending domain of the clinic, checked against
    the clinic's DKIM keys (every clinic's when `clinic_id` is None): the CLI's and the admin's
    check-DNS."""
    domains = (
        [sending_domains.checked_domain(domain)]
        if domain
        else sending_domains.domains_of(session, clinic_id or 0)
    )
    keys = dkim_keys.keys_for(session, clinic_id, domains)
    return {name: check_domain(resolver, name, keys) for name in domains}


def all_ok(results: dict[str, list[Finding]]) -> bool:
    return all(f.status == Status.OK for findings in results.values() for f in findings)
