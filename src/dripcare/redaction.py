"""Errors in logs without patients' data: the frames and types stay, the messages go.

A database error's message carries the statement's parameters and PostgreSQL's detail
(`Key (clinic_id, email)=(1, ana@example.com)`); an address check's names the address. The
frames, exception types and SQLSTATE are enough to find a fault, and name nobody.
"""

from __future__ import annotations

import re
import traceback
from urllib.parse import urlsplit, urlunsplit


def withheld(exc: BaseException) -> str:
    """The traceback's frames and exception types, oldest cause first, without messages."""
    chain: list[BaseException] = []
    error: BaseException | None = exc
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    lines = []
    for error in reversed(chain):
        lines += traceback.format_list(traceback.extract_tb(error.__traceback__))
        lines.append(f"{type(error).__module__}.{type(error).__qualname__}{_sqlstate(error)}\n")
    return "".join(lines).rstrip()


def _sqlstate(error: BaseException) -> str:
    code = getattr(getattr(error, "orig", error), "sqlstate", None)
    return f" (SQLSTATE {code}; message withheld)" if code else " (message withheld)"


_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]*):[^\s/]*@", re.IGNORECASE)


def without_passwords(text: str) -> str:
    """`text` with the password of every URL in it masked (smtp://user:***@host): server
    replies and errors about a transport may quote its URL, and alerts and the admin show them."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def url_without_password(url: str) -> str:
    """An SMTP URL as it may be shown: the user and host stay, the password is masked. Works on
    URLs that do not parse (a bad port), since that is when an error quotes them."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def webhook_origin(url: str) -> str:
    """A webhook URL as it may be logged: its path and query often are the receiver's token."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}/…" if host else "the webhook URL"
