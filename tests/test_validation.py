"""The fast path for plain addresses never disagrees with email_validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from dripcare.errors import UserError
from dripcare.validation import normalize_email, plain_address

ADDRESSES = [
    "ana@example.com",
    " Ana.Lee+aftercare@Mail.Example.CO.UK ",
    "a_b-c@sub-domain.example.org",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@example",
    "a@localhost",
    "a@clinic.local",
    "a@x.test",
    "a@x.c0m",
    "a@1.2.3.4",
    "a@-x.com",
    "a@x-.com",
    "a@xn--nxasmq6b.com",
    "a@xn--zz.com",
    "a@ex--ample.com",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "a@" + ("b" * 63 + ".") * 3 + "com",
    "a@" + "b" * 64 + ".com",
    "a@example.c",
    "a@example.comm",
    "not-an-address",
]


def reference(text: str) -> str | None:
    try:
        info = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return info.ascii_email.lower() if info.ascii_email else None


@pytest.mark.parametrize("text", ADDRESSES)
def test_a_plain_address_gets_email_validators_answer_or_none(text: str) -> None:
    fast = plain_address(text)

    assert fast is None or fast == reference(text)


def test_the_fast_path_takes_the_common_addresses() -> None:
    assert plain_address(" Ana.Lee+aftercare@Mail.Example.CO.UK ") == (
        "ana.lee+aftercare@mail.example.co.uk"
    )
    assert plain_address("a@x.test") is None and plain_address("a@xn--nxasmq6b.com") is None


def test_anything_else_still_gets_email_validators_message() -> None:
    with pytest.raises(UserError, match=r"invalid email address 'a@x\.test'"):
        normalize_email("a@x.test")
