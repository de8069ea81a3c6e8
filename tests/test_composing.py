"""Tests for dripcare.sending.composing: the hand-written RFC 5322 / MIME output.

Every message is checked by parsing it back with the stdlib parser (email.policy.default), so
the tests do not depend on how compose() lays the bytes out, only on what a mail client reads.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dripcare.sending import quoted_printable
from dripcare.sending.composing import Envelope, HeaderInjectionError, compose
from tests.fast_loop import examples

MESSAGE_ID = "5f0c2e8a9b1d4c7e@dripcare.example"
DATE = datetime(2026, 11, 24, 14, 30, 5, tzinfo=UTC)
UNSUBSCRIBE_URL = "https://dripcare.example/u/InRvayI.abc-_"
UNSUBSCRIBE_MAILTO = "mailto:unsubscribe@riverside.example?subject=unsubscribe%20InRvayI.abc-_"

EXPECTED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Content-Type",
]

TEXT = (
    "Hi Zoë,\n\n"
    "Your microneedling treatment is done. Here is how to care for your skin for the rest of "
    "today, in one line that is much longer than seventy-six characters.\n"
    ".a line starting with a dot\n"
    "From the clinic: 1 + 1 = 2, 100% sure; trailing space here \n"
    "tab\there\n"
    "Swelling of lips, tongue or throat, or trouble breathing: call 911 now.\n"
)
HTML = (
    '<!doctype html><html lang="en"><body><p style="color:#1f2937;">Hi Zoë,</p>'
    '<p>Call <a href="tel:+15550100100">+1 555 010 0100</a> &amp; more — 38&nbsp;°C</p>'
    "<p>" + "long " * 60 + "</p>\n</body></html>\n"
)

BARE_EOL = re.compile(rb"\r(?!\n)|(?<!\r)\n")

BODY_TEXT = st.text(st.characters(codec="utf-8"))


def envelope(**changes: Any) -> Envelope:
    base = Envelope(
        from_name="Riverside Skin Clinic",
        from_addr="care@riverside.example",
        to_addr="alex.sample@example.com",
        subject="Caring for your skin today",
        message_id=MESSAGE_ID,
        date=DATE,
        list_unsubscribe=(UNSUBSCRIBE_URL, UNSUBSCRIBE_MAILTO),
    )
    return replace(base, **changes)


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))


def header_block(raw: bytes) -> bytes:
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "no blank line after the headers"
    return head


def header_names(raw: bytes) -> list[str]:
    """Names of the top-level header fields, read from the raw bytes (continuations skipped)."""
    lines = header_block(raw).split(b"\r\n")
    return [line.split(b":", 1)[0].decode() for line in lines if line[:1] not in (b" ", b"\t")]


def eol(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def one_line(value: str) -> str:
    """What a header value may become: control/separator characters are spaces, runs squeezed."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def body_parts(message: EmailMessage) -> list[EmailMessage]:
    return cast(list[EmailMessage], list(message.iter_parts()))


# ---- structure ---------------------------------------------------------------------------------


def test_message_is_multipart_alternative_text_then_html() -> None:
    raw = compose(envelope(), TEXT, HTML)
    message = parse(raw)

    assert message.get_content_type() == "multipart/alternative"
    assert message.defects == []
    plain, html = body_parts(message)
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    for part in (plain, html):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
        assert part.defects == []
    assert eol(plain.get_content()) == TEXT
    assert eol(html.get_content()) == HTML


def test_all_line_endings_are_crlf_and_lines_are_short() -> None:
    raw = compose(envelope(subject="Ünïcödé " * 30), TEXT, HTML)
    assert BARE_EOL.search(raw) is None
    assert raw.endswith(b"\r\n")
    assert all(len(line) < 998 for line in raw.split(b"\r\n"))
    body = raw.partition(b"\r\n\r\n")[2]
    assert all(len(line) <= 76 for line in body.split(b"\r\n")), "quoted-printable wraps at 76"
    header_block(raw).decode("ascii")  # headers are 7-bit


def test_body_is_quoted_printable_not_raw_utf8() -> None:
    raw = compose(envelope(), "Zoë ✓", "<p>Zoë ✓</p>")
    assert raw.isascii()
    assert b"Zo=C3=AB =E2=9C=93" in raw


def test_exact_header_set_and_values() -> None:
    raw = compose(envelope(), TEXT, HTML)
    message = parse(raw)

    assert header_names(raw) == EXPECTED_HEADERS
    assert list(message.keys()) == EXPECTED_HEADERS
    sender = message["From"].addresses
    assert len(sender) == 1
    assert sender[0].display_name == "Riverside Skin Clinic"
    assert sender[0].addr_spec == "care@riverside.example"
    assert [a.addr_spec for a in message["To"].addresses] == ["alex.sample@example.com"]
    assert message["Subject"] == "Caring for your skin today"
    assert message["Date"].datetime == DATE
    assert message["Message-ID"] == f"<{MESSAGE_ID}>"
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>, <{UNSUBSCRIBE_MAILTO}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_message_id_given_with_angle_brackets_is_not_doubled() -> None:
    message = parse(compose(envelope(message_id=f"<{MESSAGE_ID}>"), "t", "h"))
    assert message["Message-ID"] == f"<{MESSAGE_ID}>"


def test_date_keeps_the_instant_of_an_aware_local_time() -> None:
    local = datetime(2026, 3, 8, 9, 15, tzinfo=ZoneInfo("America/New_York"))
    message = parse(compose(envelope(date=local), "t", "h"))
    assert message["Date"].datetime == local
    assert message["Date"].datetime.utcoffset().total_seconds() == -4 * 3600  # EDT that day


def test_reply_to_is_added_only_when_set() -> None:
    raw = compose(envelope(reply_to="front-desk@riverside.example"), "t", "h")
    assert header_names(raw) == [*EXPECTED_HEADERS[:6], "Reply-To", *EXPECTED_HEADERS[6:]]
    assert parse(raw)["Reply-To"].addresses[0].addr_spec == "front-desk@riverside.example"


def test_no_list_unsubscribe_headers_without_targets() -> None:
    raw = compose(envelope(list_unsubscribe=()), "t", "h")
    assert header_names(raw) == [
        h for h in EXPECTED_HEADERS if not h.startswith("List-Unsubscribe")
    ]


def test_compose_is_deterministic_for_a_resend() -> None:
    assert compose(envelope(), TEXT, HTML) == compose(envelope(), TEXT, HTML)


# ---- encoded headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Clínica Zoë & Söhne",
        'Smith, Jones & "Partners" (Skin)',
        "皮肤诊所",
        "Ärzte <am See>",
        "Riverside Skin Clinic: Downtown; Suite 4",
    ],
)
def test_from_display_name_round_trips(name: str) -> None:
    raw = compose(envelope(from_name=name), "t", "h")
    from_line = next(line for line in header_block(raw).split(b"\r\n") if line.startswith(b"From:"))
    from_line.decode("ascii")
    sender = parse(raw)["From"].addresses
    assert len(sender) == 1
    assert sender[0].display_name == name
    assert sender[0].addr_spec == "care@riverside.example"


@pytest.mark.parametrize(
    "subject",
    [
        "Día 1: protector solar, maquillaje y qué vigilar",
        "Ваша кожа сегодня ✓",
        "治疗后第一天",
        "Emoji 😀 and ASCII mixed",
        "Day 1: sunscreen, makeup and what to watch for " * 12,  # long, folded at spaces
        "Über die Pflege Ihrer Haut nach der Behandlung, Tag 14 — " * 20,  # long, non-ASCII
    ],
    ids=["spanish", "cyrillic", "chinese", "emoji", "long-ascii", "long-unicode"],
)
def test_subject_round_trips_and_is_folded(subject: str) -> None:
    raw = compose(envelope(subject=subject), "t", "h")
    assert parse(raw)["Subject"] == one_line(subject)
    lines = header_block(raw).split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"Subject:"))
    subject_lines = [lines[start]]
    for line in lines[start + 1 :]:
        if line[:1] not in (b" ", b"\t"):
            break
        subject_lines.append(line)
    assert all(len(line) < 998 for line in subject_lines)
    if len(subject) > 200:
        assert len(subject_lines) > 1, "a long subject is folded over several lines"
        assert all(len(line) <= 78 for line in subject_lines)


@pytest.mark.parametrize(
    "subject",
    [
        "https://riverside.example/booking/" + "x" * 80 + " is your booking link",
        "a" * 1200,
    ],
    ids=["starts-with-long-url", "1200-chars"],
)
def test_subject_with_a_long_ascii_word(subject: str) -> None:
    raw = compose(envelope(subject=subject), "t", "h")
    assert parse(raw)["Subject"] == subject
    assert all(len(line) < 998 for line in raw.split(b"\r\n"))


def from_lines(raw: bytes) -> list[bytes]:
    """The From field's lines: its first line and the continuation lines after it."""
    lines = header_block(raw).split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"From:"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in (b" ", b"\t"))
    return lines[start:end]


@pytest.mark.parametrize("name", ["Riverside " * 110, "Clínica Zoë " * 90], ids=["ascii", "utf8"])
def test_long_display_name_is_folded(name: str) -> None:
    raw = compose(envelope(from_name=name), "t", "h")
    assert all(len(line) < 998 for line in raw.split(b"\r\n"))
    assert len(from_lines(raw)) > 1
    assert parse(raw)["From"].addresses[0].display_name == one_line(name)


@pytest.mark.parametrize(
    "name",
    [
        "0" * 201,  # hypothesis found it: one word too long for the short path
        "b" * 700 + " x",
        "Zoë " * 60,
        "Ärzte " + "a" * 230 + " am See",
        'Smith, Jones & "Partners" (Skin) \\ ' * 8,
        "Code =?utf-8?q?hidden?= inside",
        "=?utf-8?q?x?= " * 30,
        "皮肤诊所" * 60,
    ],
    ids=[
        "long-word",
        "700-char-word",
        "utf8-words",
        "mixed",
        "specials",
        "encoded-look",
        "many-encoded",
        "cjk",
    ],
)
def test_long_or_odd_display_name_round_trips_exactly(name: str) -> None:
    """A fold may only replace one of the name's own spaces: a parser shows any other as a space."""
    raw = compose(envelope(from_name=name), "t", "h")
    header_block(raw).decode("ascii")
    sender = parse(raw)["From"].addresses
    assert [(a.display_name, a.addr_spec) for a in sender] == [
        (one_line(name), "care@riverside.example")
    ]
    assert all(len(line) <= 998 for line in from_lines(raw))


def test_long_ascii_display_name_keeps_lines_under_78() -> None:
    raw = compose(envelope(from_name="Riverside Skin & Laser Clinic, Downtown " * 8), "t", "h")
    assert len(from_lines(raw)) > 1
    assert all(len(line) <= 78 for line in from_lines(raw))


@pytest.mark.parametrize("name", ["a" * 1200, "😀" * 300], ids=["ascii", "emoji"])
def test_a_word_too_long_for_any_line_is_split_but_kept(name: str) -> None:
    """No header syntax carries it on one line: the parser shows spaces where it was cut."""
    raw = compose(envelope(from_name=name), "t", "h")
    assert all(len(line) <= 998 for line in from_lines(raw))
    assert parse(raw)["From"].addresses[0].display_name.replace(" ", "") == name


def test_display_name_of_wide_characters_stays_under_998_per_line() -> None:
    # 200 four-byte characters: one encoded word of them would be a 1,080-character line.
    name = "😀" * 100 + " " + "😀" * 100
    raw = compose(envelope(from_name=name), "t", "h")
    assert all(len(line) <= 998 for line in from_lines(raw))
    assert parse(raw)["From"].addresses[0].display_name == name


def test_subject_that_looks_like_an_encoded_word_is_shown_literally() -> None:
    subject = "Code =?utf-8?q?hidden?= inside"
    assert parse(compose(envelope(subject=subject), "t", "h"))["Subject"] == subject


# ---- header injection --------------------------------------------------------------------------

INJECTIONS = [
    pytest.param("Hello\r\nBcc: evil@attacker.example", id="CRLF"),
    pytest.param("Hello\nBcc: evil@attacker.example", id="LF"),
    pytest.param("Hello\rBcc: evil@attacker.example", id="CR"),
    pytest.param("Hello\x00\r\nBcc: evil@attacker.example", id="NUL-CRLF"),
    pytest.param("Hello\x00Bcc: evil@attacker.example", id="NUL"),
    pytest.param("Hello\u2028Bcc: evil@attacker.example", id="U+2028"),
    pytest.param("Hello\u2029Bcc: evil@attacker.example", id="U+2029"),
    pytest.param("Hello\x85Bcc: evil@attacker.example", id="NEL"),
    pytest.param("Hello\x0bBcc: evil@attacker.example\x0c", id="VT-FF"),
    pytest.param("Hello\r\n\r\nBcc: evil@attacker.example", id="blank-line"),
    pytest.param("Héllo\r\nBcc: evil@attacker.example", id="CRLF-non-ascii"),
]


def assert_no_injected_header(raw: bytes, expected: list[str] = EXPECTED_HEADERS) -> None:
    message = parse(raw)
    assert "Bcc" not in message
    assert list(message.keys()) == expected
    assert header_names(raw) == expected
    assert not any(line.lower().startswith(b"bcc") for line in raw.split(b"\r\n"))
    assert BARE_EOL.search(raw) is None
    plain, html = body_parts(message)
    assert (plain.get_content(), html.get_content()) == ("text", "html")


@pytest.mark.parametrize("value", INJECTIONS)
def test_control_characters_in_subject_cannot_start_a_header(value: str) -> None:
    raw = compose(envelope(subject=value), "text", "html")
    assert_no_injected_header(raw)
    assert parse(raw)["Subject"] == one_line(value)
    assert "Bcc: evil@attacker.example" in parse(raw)["Subject"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_control_characters_in_display_name_cannot_start_a_header(value: str) -> None:
    raw = compose(envelope(from_name=value), "text", "html")
    assert_no_injected_header(raw)
    sender = parse(raw)["From"].addresses
    assert len(sender) == 1
    assert sender[0].addr_spec == "care@riverside.example"
    assert sender[0].display_name == one_line(value)


BAD_ADDRESSES = [
    pytest.param("alex@example.com\r\nBcc: evil@attacker.example", id="CRLF"),
    pytest.param("alex@example.com\nBcc: evil@attacker.example", id="LF"),
    pytest.param("alex@example.com\rBcc: evil@attacker.example", id="CR"),
    pytest.param("alex@example.com>", id="gt"),
    pytest.param("<alex@example.com", id="lt"),
    pytest.param("alex@example.com, evil@attacker.example", id="comma"),
    pytest.param("alex@example.com;evil@attacker.example", id="semicolon"),
    pytest.param('"alex"@example.com', id="quote"),
    pytest.param("alex@example.com\x00", id="NUL"),
    pytest.param("alex@example.com\u2028Bcc: evil@attacker.example", id="U+2028"),
    pytest.param("alex@example.com\t", id="tab"),
]


@pytest.mark.parametrize("field", ["to_addr", "from_addr", "reply_to"])
@pytest.mark.parametrize("value", BAD_ADDRESSES)
def test_unsafe_address_raises_header_injection_error(field: str, value: str) -> None:
    with pytest.raises(HeaderInjectionError, match="invalid email address"):
        compose(envelope(**{field: value}), "t", "h")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("abc@x\r\nBcc: evil@attacker.example", id="CRLF"),
        pytest.param("abc@x\nBcc: evil@attacker.example", id="LF"),
        pytest.param("abc>@x", id="gt"),
        pytest.param("abc<@x", id="lt"),
        pytest.param("abc@x><evil@y", id="gt-lt"),
        pytest.param("abc @x", id="space"),
        pytest.param("abc@x\x00", id="NUL"),
        pytest.param("abc@x\u2028", id="U+2028"),
    ],
)
def test_unsafe_message_id_raises_header_injection_error(value: str) -> None:
    with pytest.raises(HeaderInjectionError, match=r"invalid (Message-ID|URL) for an email header"):
        compose(envelope(message_id=value), "t", "h")


@pytest.mark.parametrize(
    "value", ["abc,def@x", ",x", "a(b)@x", ""], ids=["comma", "lead-comma", "paren", "empty"]
)
def test_message_id_with_comma_or_nothing_is_refused(value: str) -> None:
    with pytest.raises(HeaderInjectionError):
        compose(envelope(message_id=value), "t", "h")


@pytest.mark.parametrize(
    "url",
    [
        "https://dripcare.example/u/x\r\nBcc: evil@attacker.example",
        "https://dripcare.example/u/x>, <mailto:evil@attacker.example",
        "https://dripcare.example/u/x y",
        "https://dripcare.example/u/x\x00",
    ],
    ids=["CRLF", "gt", "space", "NUL"],
)
def test_unsafe_unsubscribe_url_raises_header_injection_error(url: str) -> None:
    with pytest.raises(HeaderInjectionError):
        compose(envelope(list_unsubscribe=(url, UNSUBSCRIBE_MAILTO)), "t", "h")


# ---- boundary ----------------------------------------------------------------------------------


def boundary_of(raw: bytes) -> str:
    boundary = parse(raw).get_boundary()
    assert boundary
    return boundary


def test_boundary_never_appears_in_the_encoded_body() -> None:
    boundary = boundary_of(compose(envelope(), "t", "h"))
    hostile = f"--{boundary}\nContent-Type: text/html\n\n<b>fake</b>\n--{boundary}--\n{boundary}"
    raw = compose(envelope(), hostile, hostile + "<p>html</p>")

    assert boundary_of(raw) == boundary
    # Once in Content-Type, then the two part delimiters and the close delimiter.
    assert raw.count(boundary.encode()) == 4
    assert raw.count(b"--" + boundary.encode() + b"\r\n") == 2
    assert raw.count(b"--" + boundary.encode() + b"--") == 1
    plain, html = body_parts(parse(raw))
    assert eol(plain.get_content()) == hostile
    assert eol(html.get_content()) == hostile + "<p>html</p>"


@settings(max_examples=examples(200), deadline=None, database=None)
@given(BODY_TEXT, BODY_TEXT, st.integers(min_value=0, max_value=3))
def test_boundary_never_appears_in_body_property(before: str, after: str, copies: int) -> None:
    boundary = boundary_of(compose(envelope(), "t", "h"))
    text = before + f"\n--{boundary}\n" * copies + after
    raw = compose(envelope(), text, text)
    delimiter_lines = [line for line in raw.split(b"\r\n") if boundary.encode() in line]
    assert len(delimiter_lines) == 4
    assert body_parts(parse(raw))[0].get_content_type() == "text/plain"
    assert [eol(p.get_content()) for p in body_parts(parse(raw))] == [eol(text), eol(text)]


# ---- bare CR in the body -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html"),
    [("line one\rline two", "<p>x</p>"), ("t", "<p>Hi Ann\r.\r\nQUIT</p>")],
    ids=["text", "html-cr-dot"],
)
def test_lone_carriage_return_never_reaches_the_wire(text: str, html: str) -> None:
    raw = compose(envelope(), text, html)
    assert BARE_EOL.search(raw) is None


# ---- property: arbitrary input ----------------------------------------------------------------


@settings(
    max_examples=examples(300),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    text=BODY_TEXT,
    html=BODY_TEXT,
    subject=st.text(),
    from_name=st.text(),
    reply=st.booleans(),
)
@example(text="t", html="h", subject="s", from_name="0" * 201, reply=False)
def test_arbitrary_input_round_trips(
    text: str, html: str, subject: str, from_name: str, reply: bool
) -> None:
    env = envelope(
        subject=subject,
        from_name=from_name,
        reply_to="desk@riverside.example" if reply else "",
    )
    raw = compose(env, text, html)
    message = parse(raw)

    expected = list(EXPECTED_HEADERS)
    if reply:
        expected.insert(6, "Reply-To")
    assert list(message.keys()) == expected
    assert header_names(raw) == expected
    header_block(raw).decode("ascii")

    assert message["Subject"] == one_line(subject)
    sender = message["From"].addresses
    assert len(sender) == 1
    assert sender[0].display_name == one_line(from_name)
    assert sender[0].addr_spec == "care@riverside.example"
    assert message["Message-ID"] == f"<{MESSAGE_ID}>"

    assert message.get_content_type() == "multipart/alternative"
    plain, rich = body_parts(message)
    assert (plain.get_content_type(), rich.get_content_type()) == ("text/plain", "text/html")
    assert eol(plain.get_content()) == eol(text)
    assert eol(rich.get_content()) == eol(html)

    # Quoted-printable keeps every body line short.
    body = raw.partition(b"\r\n\r\n")[2]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))


def test_composed_bodies_are_the_quoted_printable_encoding_of_text_and_html() -> None:
    text, html = "Hi Ann,\n\n.\ntrailing \nnaïve", "<div>" + "<tr>é</tr>" * 200 + "</div>"
    body = compose(envelope(), text, html).partition(b"\r\n\r\n")[2]
    assert quoted_printable.encode(text) in body
    assert quoted_printable.encode(html) in body
