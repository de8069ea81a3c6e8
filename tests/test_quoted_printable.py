"""Tests for dripcare.sending.quoted_printable: the chunk-cached encoder writes the bytes that
encoding the whole text at once with binascii.b2a_qp (the composer before the cache) writes."""

from __future__ import annotations

import binascii
import email
import email.policy
from email.message import EmailMessage
from unittest.mock import patch

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dripcare.sending import quoted_printable
from dripcare.sending.quoted_printable import encode
from tests.fast_loop import examples


def whole_text(text: str) -> bytes:
    """The encoder before the cache: the whole text through b2a_qp at once."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


# Pieces quoted-printable treats specially: spaces and tabs (escaped before a line's end), a dot
# (escaped alone on a line), "=", non-ASCII (a byte becomes 3 columns), NUL, CR and LF, the tags
# a long line is cut before, and runs that bring a line near the 76 columns of a soft break.
_SPECIAL = [" ", "\t", ".", "=", "é", "€", "\x00", "\r", "\n", "\r\n", "a", "x" * 70, "x" * 73]
_PIECE = st.sampled_from([*_SPECIAL, "é" * 24, "<", "<tr>", "<tr ", "<t", "<trx"])
_NAME_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
BODY = st.lists(_PIECE | st.text(st.characters(codec="utf-8"), max_size=90)).map("".join)


@settings(max_examples=examples(1500), deadline=None, database=None)
@given(text=BODY)
@example(text="x" * 75 + " \n.\n" + "x" * 74 + "=\n\t")
@example(text="\n.")
@example(text=" ")
@example(text="x" * 74 + "<tr>" + "é<tr>." * 40)
def test_encoding_is_byte_identical_to_encoding_the_whole_text(text: str) -> None:
    # Every line cut into chunks, however short, so each cut meets every kind of neighbour.
    with patch.object(quoted_printable, "_LONG_LINE", 0):
        assert encode(text) == whole_text(text)
        assert encode(text) == whole_text(text)  # again, from the cache
    assert encode(text) == whole_text(text)


@settings(max_examples=examples(100), deadline=None, database=None)
@given(
    names=st.lists(st.text(_NAME_CHARS, max_size=40), min_size=2, max_size=6),
    filler=st.text(st.sampled_from("ab é=.<"), max_size=80),
)
def test_one_long_html_line_sent_to_recipients_with_different_names(
    names: list[str], filler: str
) -> None:
    # Given one step's HTML, one long line like MJML's, with each recipient's name near the start
    tail = "".join(f"<tr><td>{filler} {i} </td></tr><div>{filler}</div>" for i in range(30))
    bodies = [f"<table><tr>Hello {name},</tr>{tail}" for name in names]
    assert all(len(body) > quoted_printable._LONG_LINE for body in bodies)
    # When each is encoded, its chunks after the name now starting at another column
    # Then each is the bytes of encoding it whole, and a mail client reads the text back
    for body in bodies:
        encoded = encode(body)
        assert encoded == whole_text(body)
        assert decoded(encoded) == body.replace("\r\n", "\n").replace("\r", "\n")


def decoded(body: bytes) -> str:
    raw = b"Content-Type: text/html; charset=utf-8\r\n"
    raw += b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return str(message.get_content())


def test_lines_of_shared_chunks_stay_within_76_columns() -> None:
    body = encode("<div>" + "<tr>é é</tr>" * 500 + " \n.")
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert body.endswith(b"=20\r\n=2E")
