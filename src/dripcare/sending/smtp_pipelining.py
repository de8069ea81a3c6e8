"""One email over an smtplib connection in two round trips when the server pipelines (RFC 2920).

smtplib's `sendmail` waits for the reply to MAIL FROM, then RCPT TO, then DATA, then the body:
four round trips, and two regular expressions over the whole body (about 23 KB here) to
stuff dots. Where the server advertises PIPELINING, `sendmail` below writes MAIL FROM, RCPT TO
and DATA at once, reads their three replies, then writes the body (CRLF line endings, dots
stuffed with `bytes.replace`) and reads its reply. Without PIPELINING it is smtplib's own path.

It raises what smtplib's `sendmail` raises, at the same stages and with the same codes, and
leaves the connection as smtplib would (closed after a 421, RSET after a refused recipient), so
transports.py classifies both paths with one set of `except` clauses.
"""

from __future__ import annotations

import contextlib
import re
import smtplib

_CRLF = b"\r\n"
_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_ACCEPTED_RCPT = (250, 251)  # what smtplib counts as a recipient accepted
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")


def sendmail(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """Send one message to one recipient; smtplib's exceptions on a refusal (see module doc)."""
    conn.ehlo_or_helo_if_needed()
    if not (conn.does_esmtp and conn.has_extn("pipelining")):
        conn.sendmail(sender, [recipient], data)
        return
    size = f" SIZE={len(data)}" if conn.has_extn("size") else ""
    envelope = f"MAIL FROM:{quoted(sender)}{size}\r\nRCPT TO:{quoted(recipient)}\r\nDATA\r\n"
    conn.send(envelope.encode("ascii"))  # a non-ASCII address fails here, as in smtplib
    _read_envelope_replies(conn, sender, recipient)
    conn.send(wire_body(data))
    code, reply = conn.getreply()
    if code != 250:
        _after_refusal(conn, code)
        raise smtplib.SMTPDataError(code, reply)


def wire_body(data: bytes) -> bytes:
    """The message as it goes after DATA: CRLF line endings, dots stuffed, ending CRLF.CRLF."""
    if len(data) - len(data.translate(None, _CRLF)) != 2 * data.count(_CRLF):
        # A bare LF or CR (rare, so a regular expression): some servers end the message at
        # "<LF>.<CR><LF>" and would read what follows as commands (SMTP smuggling).
        data = _ANY_EOL.sub(_CRLF, data)
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(_CRLF):
        data += _CRLF
    return data + b".\r\n"


def _read_envelope_replies(conn: smtplib.SMTP, sender: str, recipient: str) -> None:
    """Read the replies to MAIL, RCPT and DATA; raise as smtplib would at the first refusal.

    Every reply is read so the next command does not meet a stale one; a 421 closes the
    connection at once (the server is going away, later replies may never come).
    """
    mail_code, mail_reply = conn.getreply()
    if mail_code == 421:
        conn.close()
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    rcpt = _later_reply(conn, refused=mail_code != 250)
    if rcpt is not None and rcpt[0] == 421 and mail_code == 250:
        conn.close()
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
    refused = mail_code != 250 or rcpt is None or rcpt[0] not in _ACCEPTED_RCPT
    data = _later_reply(conn, refused=refused)
    if mail_code != 250:
        _end_refused(conn, data)  # the transport sends RSET after a refused sender
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    assert rcpt is not None
    if rcpt[0] not in _ACCEPTED_RCPT:
        _end_refused(conn, data)
        _rset(conn)
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
    assert data is not None
    if data[0] != 354:
        if data[0] == 421:
            conn.close()
        raise smtplib.SMTPDataError(*data)  # the transport sends RSET, as after smtplib's


def _later_reply(conn: smtplib.SMTP, *, refused: bool) -> tuple[int, bytes] | None:
    """The next pipelined reply; None if the server hung up after it had refused us already
    (smtplib would have stopped at that refusal and never seen the hang-up)."""
    if conn.sock is None:
        return None
    try:
        return conn.getreply()
    except smtplib.SMTPServerDisconnected:
        if refused:
            return None
        raise


def _end_refused(conn: smtplib.SMTP, data: tuple[int, bytes] | None) -> None:
    """A server that said 354 to DATA after refusing the envelope gets an empty message's end
    (RFC 2920, 3.1); it cannot deliver it, having no recipient."""
    if data is None or data[0] != 354:
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        conn.send(b".\r\n")
        conn.getreply()


def _rset(conn: smtplib.SMTP) -> None:
    """RSET as smtplib's `_rset` does: a hang-up is ignored (the next send reconnects)."""
    if conn.sock is None:
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        conn.rset()


def _after_refusal(conn: smtplib.SMTP, code: int) -> None:
    """After the body was refused: closed on 421 (the transport's RSET then reconnects)."""
    if code == 421:
        conn.close()


def quoted(address: str) -> str:
    """`<address>` as smtplib.quoteaddr gives it, without its parser (email.utils.parseaddr,
    ~10 us an address on a quiet machine) for the plain dot-atom addresses that we send to."""
    if _DOT_ATOM_ADDRESS.match(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)
