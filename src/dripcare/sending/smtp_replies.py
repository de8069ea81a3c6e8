"""What an SMTP reply says, read by the stage it came at and its RFC 3463 enhanced status code.

Only a permanent reply about the recipient's own mailbox may put an address on the suppression
list. A refusal of our sender, our login, our TLS or our domain's policy says nothing about the
patient: it is a transport problem that pauses sending (circuit.py) and is told to a person.
"""

from __future__ import annotations

import enum
import re


class Stage(enum.StrEnum):
    CONNECT = "connect"
    EHLO = "ehlo"
    TLS = "tls"
    AUTH = "auth"
    MAIL_FROM = "mail-from"
    RCPT_TO = "rcpt-to"
    DATA = "data"


class Verdict(enum.StrEnum):
    RECIPIENT = "recipient"  # permanent and about this address: suppress it
    TEMPORARY = "temporary"  # this message, later (counts towards max_attempts)
    PERMANENT = "permanent"  # this message failed for good; the address stays usable
    TRANSPORT = "transport"  # our side or the whole connection: pause the transport


_ENHANCED = re.compile(r"^\s*(?:\d{3}[ -])?\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# 5.1.x: bad destination mailbox/address (5.1.1 no such user, 5.1.10 null MX ...), except the
# sender's own address (5.1.7 bad sender, 5.1.8 bad sender's system).
_SENDER_ADDRESS = {7, 8}
# 5.7.x about our own authentication, which fails every message alike: 5.7.8/5.7.9 (AUTH),
# 5.7.20-5.7.27 (RFC 7372: no DKIM, SPF or DMARC pass).
_OUR_AUTHENTICATION = {8, 9, *range(20, 28)}
_RECIPIENT_STAGES = {Stage.RCPT_TO, Stage.DATA}


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 `class.subject.detail` code a reply starts with, if it has one."""
    found = _ENHANCED.match(text)
    if found is None:
        return None
    klass, subject, detail = (int(part) for part in found.groups())
    return klass, subject, detail


def blames_recipient(subject: int, detail: int) -> bool:
    """A permanent `5.subject.detail` about the recipient's own address: a bad destination
    mailbox or address (5.1.x, but not 5.1.7/5.1.8, which are about our sender) or a disabled
    mailbox (5.2.1). Replies during sending and bounce reports later go by this one rule."""
    return (subject == 1 and detail not in _SENDER_ADDRESS) or (subject, detail) == (2, 1)


def classify(stage: Stage, code: int | None, text: str) -> Verdict:
    """Whose problem a reply is; see the module docstring for why that decides suppression."""
    if stage not in _RECIPIENT_STAGES or code is None:
        return Verdict.TRANSPORT
    enhanced = enhanced_code(text)
    if 400 <= code < 500:
        return Verdict.TEMPORARY
    if not 500 <= code < 600:
        return Verdict.TRANSPORT  # a reply no server should give here: let a person look
    if enhanced is None:
        # A bare 550/551/553 to RCPT TO is how older servers say "no such user".
        return Verdict.RECIPIENT if stage is Stage.RCPT_TO else Verdict.PERMANENT
    _, subject, detail = enhanced
    if blames_recipient(subject, detail):
        return Verdict.RECIPIENT
    if (subject, detail) == (2, 2):  # mailbox full: RFC 3463 calls it persistent transient
        return Verdict.TEMPORARY
    if subject == 1 or (subject == 7 and detail in _OUR_AUTHENTICATION):
        return Verdict.TRANSPORT
    if subject == 7 and "relay" in text.lower():  # "Relay access denied": our server setup
        return Verdict.TRANSPORT
    # Anything else (content, size, a receiver's policy for this message) fails this message
    # only: pausing everything for it would stall every patient behind one refusal.
    return Verdict.PERMANENT
