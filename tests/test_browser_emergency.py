"""Emergency advice on a phone's first screen (issue 13), measured in Chromium at 375 × 667.

Each default email of days 0-7 is rendered as the preview renders it and laid out in the
page; its one-line emergency pointer must end within the first 667 px. The "I'm worried"
page must show the emergency line and its call button above the checklist, also within
the first screen. The measured positions are printed (run with -s) for the closing note.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.content.campaigns import load_campaign_dir
from dripcare.content.previews import render_step
from dripcare.db import session_scope
from dripcare.models import Clinic, Message
from dripcare.people.links import make_token
from tests.browser_fixtures import PHONE_SCREEN, long_named_clinic, shot
from tests.campaign_fixtures import CAMPAIGN_DIR
from tests.conftest import IN_CI
from tests.factories import make_clinic, make_enrollment

try:
    from playwright.sync_api import Page, expect
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

SPEC = load_campaign_dir(CAMPAIGN_DIR)
POINTER_STEPS = [step.key for step in SPEC.steps if SPEC.clinical.needs_pointer(step.offset_days)]
LONG_NAMED = long_named_clinic(settings={})


@pytest.fixture
def page(phone_page: Page) -> Page:
    return phone_page


def first_screen_bottom(page: Page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box["y"] + box["height"]


@pytest.mark.parametrize("clinic", [None, LONG_NAMED], ids=["sample", "long-named-gb"])
@pytest.mark.parametrize("key", POINTER_STEPS)
def test_day_0_to_7_emails_show_the_emergency_pointer_on_the_first_screen(
    page: Page, key: str, clinic: Clinic | None
) -> None:
    assert POINTER_STEPS == ["day-0", "day-1", "day-3", "day-7"]
    rendered = render_step(SPEC, key, clinic)
    # No network: a logo that does not load keeps its place (width set, height from alt text).
    page.route("**/*", lambda route: route.abort())
    page.set_content(rendered.html)

    pointer = page.locator("#emergency-pointer")
    number = "999" if clinic else "911"
    expect(pointer).to_contain_text(f"trouble breathing: call {number} now.")
    bottom = first_screen_bottom(page, "#emergency-pointer")
    block = page.get_by_role("heading", name="Emergency: get help now").bounding_box()
    assert block is not None
    print(
        f"\n{key} ({'long-named GB clinic' if clinic else 'sample clinic'}): emergency pointer "
        f"bottom at {bottom:.0f} px; full block heading at {block['y']:.0f} px"
    )
    shot(page, f"emergency-pointer-{key}-{'gb' if clinic else 'sample'}")
    assert bottom <= PHONE_SCREEN["height"], f"{key}: the pointer ends at {bottom:.0f} px"
    assert block["y"] > bottom  # the full block is still there, further down


def worried_token(settings: Settings, **clinic: str) -> str:
    """The check-in link of a patient's day-1 email."""
    clinic_id = make_clinic(**clinic)
    enrollment = make_enrollment(settings, clinic_id, datetime.now(UTC) - timedelta(days=1))
    with session_scope() as session:
        day_1 = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment).order_by(Message.due_at)
        ).all()[1]
        return make_token(settings, day_1.id)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("clinic", "number"),
    [({}, "911"), ({"country": "GB", "after_hours": "call +44 20 7946 0999 or NHS 111"}, "999")],
    ids=["us", "gb"],
)
def test_worried_page_starts_with_the_emergency_line_and_a_call_button(
    settings: Settings, live_server: str, page: Page, clinic: dict[str, str], number: str
) -> None:
    token = worried_token(settings, **clinic)
    response = page.goto(f"{live_server}/c/{token}/worried")
    assert response is not None and response.status == 200

    line = page.get_by_text(f"trouble breathing: call {number} now.")
    call = page.get_by_role("link", name=f"Call {number}", exact=True)
    expect(call).to_have_attribute("href", f"tel:{number}")
    line_box, call_box = line.bounding_box(), call.bounding_box()
    checklist = page.locator("#checklist").bounding_box()
    assert line_box and call_box and checklist
    print(
        f"\nworried page ({number}): emergency line y={line_box['y']:.0f} px, call button "
        f"y={call_box['y']:.0f}-{call_box['y'] + call_box['height']:.0f} px, checklist from "
        f"y={checklist['y']:.0f} px"
    )
    shot(page, f"emergency-worried-{number}")
    assert line_box["y"] < call_box["y"] < checklist["y"]
    assert call_box["y"] + call_box["height"] <= PHONE_SCREEN["height"]
    assert call_box["height"] >= 44  # a comfortable tap target
    if clinic:
        after = page.get_by_role("link", name="+44 20 7946 0999")
        expect(after).to_have_attribute("href", "tel:+442079460999")
        expect(page.get_by_role("link", name="111").first).to_have_attribute("href", "tel:111")


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_phone_numbers_on_unsubscribe_and_preferences_pages_are_links(
    settings: Settings, live_server: str, page: Page
) -> None:
    token = worried_token(settings)
    for path in (f"/u/{token}", f"/p/{token}"):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 200, path
        phone = page.get_by_role("link", name="+1 555 010 0100")
        expect(phone).to_have_attribute("href", "tel:+15550100100")
