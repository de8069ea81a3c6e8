"""Quoted-printable bodies with CRLF line ends, reusing the encoding of what recipients share.

`binascii.b2a_qp` costs ~30 ns a byte, and an email's HTML is one line of ~17 KB (MJML's
output) with the patient's name and links in it. So a long line is cut into chunks before
each `<tr`, and each chunk's encoding is cached: only the chunks that hold
a per-recipient value are new in each email.

The bytes are exactly those of encoding the whole text at once: b2a_qp decides what to do with
a byte from the column it is at (soft line breaks before column 76), the byte itself and the
next one (a space or a lone dot before a line's end). A chunk is encoded after as many filler
bytes as the column it starts at, followed by the first byte of what comes after it (`<`, the
line's newline, or nothing at the end of the text); the filler's and that byte's output are
then cut off again. `tests/test_quoted_printable.py` compares both ways over generated bodies.
"""

from __future__ import annotations

import binascii
from functools import lru_cache

CRLF = b"\r\n"
_CUT = "<tr"  # a table row: ~50 chunks in a step's email; any text starting with "<" would do
_LONG_LINE = 512  # shorter lines are one chunk: cutting them would cost more than it saves
# Encoded chunks kept: a step's email is ~50 chunks, each seen at a few starting columns (the
# names before it differ in length), and each entry holds a chunk twice (~0.5-1 KB).
_CACHED_CHUNKS = 16384
_FILLER = b"x"  # a byte b2a_qp copies as it is, so n of them move it to column n


def encode(text: str) -> bytes:
    """Quoted-printable with CRLF line ends; a lone CR never reaches the wire."""
    *lines, last = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # A short line is one cached call, without a Python frame when it is found: most lines are.
    encoded = [
        _short_line(line) if len(line) <= _LONG_LINE else _long_line(line, b"\n") for line in lines
    ]
    encoded.append(_long_line(last, b""))
    return CRLF.join(encoded)


@lru_cache(maxsize=_CACHED_CHUNKS)
def _short_line(line: str) -> bytes:
    return _chunk("", line, 0, b"\n")[0]


def _long_line(line: str, end: bytes) -> bytes:
    """One line in chunks; `end` is what follows it: a newline, or nothing for the last line."""
    if _CUT not in line:
        return _chunk("", line, 0, end)[0]
    first, *rest, last = line.split(_CUT)  # str.split: a regular expression costs 10x more
    out, column = _chunk("", first, 0, b"<")
    parts = [out]
    for piece in rest:
        out, column = _chunk(_CUT, piece, column, b"<")
        parts.append(out)
    parts.append(_chunk(_CUT, last, column, end)[0])
    return b"".join(parts)


@lru_cache(maxsize=_CACHED_CHUNKS)
def _chunk(cut: str, piece: str, column: int, after: bytes) -> tuple[bytes, int]:
    """The encoding of `cut + piece` starting at `column` and followed by `after`, and the
    column it ends at. A column is at most 75, so the filler never gets a soft line break."""
    data = _FILLER * column + (cut + piece).encode() + after
    out = binascii.b2a_qp(data, istext=True)[column:]
    if after:
        # "<" and "\n" come out as they are, never after a soft break: b2a_qp breaks a line
        # before the text's last byte or a newline only to escape it.
        out = out[: -len(after)]
    newline = out.rfind(b"\n")
    ends_at = column + len(out) if newline < 0 else len(out) - newline - 1
    return out.replace(b"\n", CRLF), ends_at
