"""Build the RFC 5322 bytes of one email.

The stdlib's `EmailMessage` costs ~1.9 ms per message, more than everything else in the send
path together (see ARCHITECTURE.md). The shape of our emails is fixed (multipart/alternative,
text + HTML, UTF-8, quoted-printable), so it is written directly (the bodies by
`quoted_printable`), while headers still go through `email.header`/`email.utils` for encoding
and folding. Every header value is stripped of CR/LF first: patient and clinic data can never start
a header of their own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.base64mime import header_encode
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache
from itertools import groupby

from dripcare.sending import quoted_printable

CRLF = b"\r\n"


class HeaderInjectionError(ValueError):
    """An address contained characters that could end the header."""


@dataclass(frozen=True)
class Envelope:
    from_name: str
    from_addr: str
    to_addr: str
    subject: str
    message_id: str
    date: datetime
    list_unsubscribe: tuple[str, ...] = ()
    reply_to: str = ""


def clean(value: str) -> str:
    """One line of text: CR, LF and other control characters become spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


_ADDRESS = re.compile(r"[^\x00-\x20\x7f()<>,;:\"\\\[\]@]+@[^\x00-\x20\x7f()<>,;:\"\\\[\]@]+")
_MSG_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+", re.ASCII)
_URL = re.compile(r"[!#-;=?-~]+", re.ASCII)  # printable ASCII except space, < and >
_LONGEST_PLAIN_WORD = 70
_LONGEST_NAME = 200
_FOLD_AT = 78  # RFC 5322: lines SHOULD be at most 78 characters...
_LONGEST_LINE = 998  # ...and MUST be at most 998.
_FROM = "From: "
# The UTF-8 bytes one base64 encoded word can hold and still fit on a line after "From: ".
_ENCODED_WORD_BYTES = (_LONGEST_LINE - len(_FROM) - len("=?utf-8?b??=")) // 4 * 3


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise HeaderInjectionError(f"invalid {what} for an email header: {value!r}")
    return value


@lru_cache(maxsize=4096)
def _encoded(name: str, value: str) -> str:
    """RFC 2047 where needed: non-ASCII, text that looks encoded, or words too long to fold.

    Cached: a step's subject is the same for most of its recipients, and email.header's
    folding costs ~0.5 ms a call."""
    value = clean(value)
    plain = (
        value.isascii()
        and "=?" not in value
        and all(len(word) <= _LONGEST_PLAIN_WORD for word in value.split())
    )
    return Header(value, "us-ascii" if plain else "utf-8", header_name=name).encode(linesep="\r\n")


@lru_cache(maxsize=1024)
def _mailbox(name: str, addr: str) -> str:
    """formataddr() when its single line fits; otherwise a display name folded at its spaces.
    Cached: one per clinic sender."""
    addr = _checked(addr, _ADDRESS, "email address")
    name = clean(name)
    if not name:
        return addr
    if "=?" not in name and len(name) <= _LONGEST_NAME:
        mailbox = formataddr((name, addr), "utf-8")
        if len(_FROM) + len(mailbox) <= _LONGEST_LINE:
            return mailbox
    return _fold([*_phrase(name), f"<{addr}>"])


def _phrase(name: str) -> list[str]:
    """The display name as pieces that stood between its spaces.

    Folding only ever replaces one of the name's own spaces: parsers keep the whitespace between
    two encoded words of a display name (the stdlib does; RFC 2047 says to drop it), so a fold
    anywhere else would add or lose a space. Runs of plain ASCII words become one quoted string,
    the other words (non-ASCII, too long, or looking like an encoded word) one long encoded word
    per run.
    """
    pieces: list[str] = []
    for plain, run in groupby(name.split(" "), key=_is_plain):
        words = list(run)
        pieces += _quoted(words) if plain else _encoded_words(words)
    return pieces


def _is_plain(word: str) -> bool:
    return word.isascii() and "=?" not in word and len(word) <= _LONGEST_PLAIN_WORD


def _quoted(words: list[str]) -> list[str]:
    escaped = [word.replace("\\", "\\\\").replace('"', '\\"') for word in words]
    escaped[0] = '"' + escaped[0]
    escaped[-1] += '"'
    return escaped


def _encoded_words(words: list[str]) -> list[str]:
    """As few encoded words as fit on lines; a word too long for one line is split (a parser
    shows a space there: no header syntax can carry such a word unbroken)."""
    chunks: list[str] = []
    for word in words:
        for part in _parts(word):
            joined = f"{chunks[-1]} {part}" if chunks else part
            if chunks and len(joined.encode()) <= _ENCODED_WORD_BYTES:
                chunks[-1] = joined
            else:
                chunks.append(part)
    return [header_encode(chunk, "utf-8") for chunk in chunks]


def _parts(word: str) -> list[str]:
    parts = [""]
    for ch in word:
        if len((parts[-1] + ch).encode()) > _ENCODED_WORD_BYTES:
            parts.append("")
        parts[-1] += ch
    return parts


def _fold(pieces: list[str]) -> str:
    """Pieces joined by spaces, each space turned into a fold where a line would pass 78."""
    lines = [pieces[0]]
    width = len(_FROM) + len(pieces[0])
    for piece in pieces[1:]:
        if width + 1 + len(piece) > _FOLD_AT:
            lines.append(piece)
            width = 1 + len(piece)
        else:
            lines[-1] += " " + piece
            width += 1 + len(piece)
    return "\r\n ".join(lines)


def _boundary(message_id: str) -> str:
    # "=_" can never occur in quoted-printable content, so this cannot collide with the body.
    return "=_dc" + hashlib.blake2b(message_id.encode(), digest_size=12).hexdigest()


def headers(env: Envelope) -> list[str]:
    lines = [
        f"{_FROM}{_mailbox(env.from_name, env.from_addr)}",
        f"To: {_checked(env.to_addr, _ADDRESS, 'email address')}",
        f"Subject: {_encoded('Subject', env.subject)}",
        f"Date: {format_datetime(env.date)}",
        f"Message-ID: <{_checked(env.message_id.strip('<>'), _MSG_ID, 'Message-ID')}>",
        "MIME-Version: 1.0",
    ]
    if env.reply_to:
        lines.append(f"Reply-To: {_checked(env.reply_to, _ADDRESS, 'email address')}")
    if env.list_unsubscribe:
        targets = ", ".join(f"<{_checked(url, _URL, 'URL')}>" for url in env.list_unsubscribe)
        lines.append(f"List-Unsubscribe: {targets}")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    return lines


def compose(env: Envelope, text: str, html: str) -> bytes:
    """The whole message, CRLF line endings, ready for SMTP DATA or an .eml file."""
    boundary = _boundary(env.message_id)
    head = [*headers(env), f'Content-Type: multipart/alternative; boundary="{boundary}"']
    part_head = (
        "Content-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    )
    return b"".join(
        [
            "\r\n".join(head).encode("ascii"),
            CRLF * 2,
            f"--{boundary}\r\n{part_head.format(kind='plain')}\r\n\r\n".encode("ascii"),
            quoted_printable.encode(text),
            f"\r\n--{boundary}\r\n{part_head.format(kind='html')}\r\n\r\n".encode("ascii"),
            quoted_printable.encode(html),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
