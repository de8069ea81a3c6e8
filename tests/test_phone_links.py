"""Phone numbers in a clinic's free text become tap-to-call links (issue 13)."""

from __future__ import annotations

import pytest

from dripcare.content.phone_links import phone_uri, tel_links


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "call +1 555 010 0199 and follow the message",
            'call <a href="tel:+15550100199">+1 555 010 0199</a> and follow the message',
        ),
        ("call NHS 111 for advice", 'call NHS <a href="tel:111">111</a> for advice'),
        ("ring (020) 7946-0000", 'ring <a href="tel:02079460000">(020) 7946-0000</a>'),
        ("Monday to Friday, 9am to 5pm", "Monday to Friday, 9am to 5pm"),
        ("we answer within 24 hours, all of 2026", "we answer within 24 hours, all of 2026"),
        ('<b>call</b> "us"', "&lt;b&gt;call&lt;/b&gt; &#34;us&#34;"),
    ],
)
def test_numbers_in_free_text_are_linked_and_the_rest_escaped(text: str, expected: str) -> None:
    assert str(tel_links(text)) == expected


def test_phone_uri_keeps_digits_and_plus() -> None:
    assert phone_uri("+1 (555) 010-0100") == "tel:+15550100100"
