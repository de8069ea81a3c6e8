"""The patient pages in a real headless Chromium at phone size, used as a person does.

Debian's Chromium (/usr/bin/chromium) is driven by Playwright; no browser is downloaded.
Locally a missing Chromium or Playwright skips this module; in CI (CI=true) it fails it.
Every page state is saved to test-artifacts/screenshots/<name>.png for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import CheckIn, Message, Suppression
from dripcare.people.links import make_token
from tests.browser_fixtures import new_page, shot
from tests.conftest import IN_CI
from tests.factories import make_clinic, make_enrollment

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

PHONE = {"width": 375, "height": 812}
TAP_TARGET = 44  # px, the smallest comfortable tap target (WCAG 2.5.5, Apple HIG)

# One browser database is enough: the pages' SQL is covered on both by the httpx tests.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def phone_page(browser: Browser, **options: Any) -> Iterator[Page]:
    yield from new_page(browser, PHONE, phone=True, **options)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A phone: 375×812, touch, JavaScript on."""
    yield from phone_page(browser)


@pytest.fixture
def nojs_page(browser: Browser) -> Iterator[Page]:
    """The same phone with JavaScript switched off."""
    yield from phone_page(browser, java_script_enabled=False)


def message_token(settings: Settings, **clinic: str) -> str:
    """A link token for the first email of a patient treated 26 hours ago (day 1)."""
    clinic_id = make_clinic(**clinic)
    treated_at = datetime.now(UTC) - timedelta(days=1, hours=2)
    enrollment = make_enrollment(settings, clinic_id, treated_at)
    with session_scope() as session:
        first = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment).order_by(Message.due_at)
        ).first()
        assert first is not None
        return make_token(settings, first.id)


def open_page(page: Page, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, url


def suppression_sources() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Suppression.source)))


def check_ins() -> list[tuple[str, list[str]]]:
    with session_scope() as session:
        return [(c.level, c.answers) for c in session.scalars(select(CheckIn).order_by(CheckIn.id))]


# ---------------------------------------------------------------- accessibility basics

# Every visible text run with its colour, the colour it sits on (ancestors' backgrounds
# composited over white) and its size, so contrast can be checked where the text really is.
_TEXT_COLOURS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let rgb = [255, 255, 255];
    for (const [r, g, b, a] of layers.reverse()) {
      rgb = [r * a + rgb[0] * (1 - a), g * a + rgb[1] * (1 - a), b * a + rgb[2] * (1 - a)];
    }
    return rgb;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || ["STYLE", "SCRIPT"].includes(el.tagName)) continue;
    if (!el.checkVisibility()) continue;
    const s = getComputedStyle(el);
    out.push({text: node.textContent.trim().slice(0, 50), fg: parse(s.color),
              bg: background(el), size: parseFloat(s.fontSize), weight: Number(s.fontWeight)});
  }
  return out;
}"""

# Form controls a person fills in, with no label, aria-label or aria-labelledby.
_UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML)"""


def luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    light, dark = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgb_of(css: str) -> list[float]:
    match = re.fullmatch(r"rgba?\(([^)]+)\)", css.strip())
    assert match, css
    return [float(v) for v in re.split(r"[\s,/]+", match[1].strip())[:3]]


def assert_accessible_basics(page: Page) -> None:
    """What every patient page must get right on a 375 px phone."""
    assert page.evaluate("document.documentElement.lang"), "<html lang> is not set"
    assert page.title().strip(), "the page has no <title>"

    unlabelled = page.evaluate(_UNLABELLED)
    assert unlabelled == [], f"form controls without a label: {unlabelled}"
    for control in page.locator("input:not([type=hidden])").all():
        label = control.evaluate("el => el.labels[0].innerText")
        expect(page.get_by_label(label, exact=True)).to_have_count(1)

    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"scrolls sideways: {scroll_width}px wide"

    for button in page.get_by_role("button").all():
        box = button.bounding_box()
        assert box is not None and box["height"] >= TAP_TARGET, (button.inner_text(), box)
        assert button.inner_text().strip(), "a button has no name"

    body = page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.color, s.backgroundColor]; }"
    )
    body_ratio = contrast(rgb_of(body[0]), rgb_of(body[1]))
    assert body_ratio >= 4.5, f"body text contrast {body_ratio:.2f} ({body})"

    low = []
    for run in page.evaluate(_TEXT_COLOURS):
        large = run["size"] >= 24 or (run["size"] >= 18.66 and run["weight"] >= 700)
        ratio = contrast(run["fg"], run["bg"])
        if ratio < (3.0 if large else 4.5):
            low.append((run["text"], round(ratio, 2)))
    assert low == [], f"text below WCAG AA contrast: {low}"


def assert_tap_target(page: Page, link: Any) -> None:
    expect(link).to_be_visible()
    box = link.bounding_box()
    assert box is not None and box["height"] >= TAP_TARGET, box
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


# ---------------------------------------------------------------------------- the flows


def test_unsubscribe_asks_then_unsubscribes(
    settings: Settings, live_server: str, page: Page
) -> None:
    token = message_token(settings)

    open_page(page, f"{live_server}/u/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Stop emails from Riverside Skin Clinic?"
    )
    assert_accessible_basics(page)
    shot(page, "unsubscribe-confirm")
    opened = suppression_sources()
    page.get_by_role("button", name="Unsubscribe").tap()

    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    assert_accessible_basics(page)
    shot(page, "unsubscribe-done")
    assert opened == []  # opening the link (as a mail scanner does) changes nothing
    assert suppression_sources() == ["web"]


def test_changing_your_mind_after_unsubscribing_survives_a_replayed_one_click(
    settings: Settings, live_server: str, page: Page
) -> None:
    url = f"{live_server}/u/{message_token(settings)}"
    open_page(page, url)
    page.get_by_role("button", name="Unsubscribe").tap()

    page.get_by_role("link", name="Get aftercare emails again").tap()
    page.get_by_role("button", name="Get aftercare emails again").tap()
    expect(page.get_by_role("status")).to_have_text("Done: you will get aftercare emails again.")
    assert_accessible_basics(page)
    shot(page, "preferences-resubscribed")
    resubscribed = suppression_sources()
    # The browser makes the mail provider's replayed POST, so the real answer is shown.
    page.set_content(
        f'<form method="post" action="{url}"><input type="hidden" name="List-Unsubscribe" '
        'value="One-Click"><button>replay</button></form>'
    )
    page.get_by_role("button", name="replay").tap()

    expect(page.get_by_role("status")).to_contain_text("nothing has changed")
    assert_accessible_basics(page)
    shot(page, "unsubscribe-replay-ignored")
    replayed = suppression_sources()
    page.get_by_role("button", name="Unsubscribe").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    assert (resubscribed, replayed, suppression_sources()) == ([], [], ["web"])


def test_check_in_healing_as_expected(settings: Settings, live_server: str, page: Page) -> None:
    token = message_token(settings)

    open_page(page, f"{live_server}/c/{token}/ok")
    assert_accessible_basics(page)
    shot(page, "checkin-ok")
    page.get_by_role("button", name="Yes, healing as expected").tap()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    assert_accessible_basics(page)
    shot(page, "checkin-ok-thanks")
    assert check_ins() == [("fine", [])]


def test_check_in_worried_with_an_urgent_symptom_says_call_the_clinic(
    settings: Settings, live_server: str, page: Page
) -> None:
    token = message_token(settings)

    open_page(page, f"{live_server}/c/{token}/worried")
    assert_accessible_basics(page)
    shot(page, "checkin-worried")
    checkbox = page.get_by_role("checkbox", name="group of blisters")
    expect(checkbox).not_to_be_checked()
    page.locator("label", has_text="group of blisters").tap()  # the words, not the box
    expect(checkbox).to_be_checked()
    shot(page, "checkin-worried-ticked")
    page.get_by_role("button", name="Send to Riverside Skin Clinic").tap()

    expect(page.get_by_role("heading", level=1)).to_have_text("Call Riverside Skin Clinic now")
    call = page.get_by_role("link", name="Call +1 555 010 0100")
    expect(call).to_have_attribute("href", "tel:+15550100100")
    assert_tap_target(page, call)
    assert_accessible_basics(page)
    shot(page, "checkin-urgent")
    assert check_ins() == [("urgent", ["blisters"])]


def test_check_in_emergency_puts_call_911_first_and_above_the_fold(
    settings: Settings, live_server: str, page: Page
) -> None:
    token = message_token(settings)

    open_page(page, f"{live_server}/c/{token}/worried")
    page.get_by_text("Eye pain or any change in your vision").tap()
    page.get_by_text("Many pimples").tap()
    page.get_by_role("button", name=re.compile("^Send to")).tap()

    first_heading = page.get_by_role("heading").first
    expect(first_heading).to_have_text("Call 911 now")
    expect(first_heading).to_be_in_viewport()
    box = first_heading.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    call = page.get_by_role("link", name="Call 911")
    expect(call).to_have_attribute("href", "tel:911")
    assert_tap_target(page, call)
    expect(call).to_be_in_viewport()  # one tap, no scrolling, for an emergency
    assert_accessible_basics(page)
    shot(page, "checkin-emergency")
    assert check_ins() == [("emergency", ["eye", "pimples"])]


def test_other_choices_lead_to_the_preferences_page(
    settings: Settings, live_server: str, page: Page
) -> None:
    token = message_token(settings)

    open_page(page, f"{live_server}/u/{token}")
    page.get_by_role("link", name="Other choices").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email preferences")
    assert_accessible_basics(page)
    shot(page, "preferences")
    page.get_by_role("button", name="Stop emails about this treatment").tap()

    expect(page.get_by_role("status")).to_have_text("Done: no more emails about this treatment.")
    assert_accessible_basics(page)
    shot(page, "preferences-done")
    page.get_by_role("button", name="Stop all emails from Riverside Skin Clinic").tap()
    expect(page.get_by_role("status")).to_have_text("Done: no more emails from this clinic.")
    assert_accessible_basics(page)
    shot(page, "preferences-stopped")
    assert suppression_sources() == ["preferences"]


@pytest.mark.parametrize("path", ["/u/MQ.forged", "/c/MQ.forged/ok", "/c/MQ.forged/worried"])
def test_a_forged_link_says_it_does_not_work(
    settings: Settings, live_server: str, page: Page, path: str
) -> None:
    open_page(page, f"{live_server}{path}", status=404)

    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    expect(page.get_by_text("Traceback")).to_have_count(0)
    assert_accessible_basics(page)
    if path.startswith("/u/"):
        shot(page, "not-found")


def test_unsubscribe_works_without_javascript(
    settings: Settings, live_server: str, nojs_page: Page
) -> None:
    token = message_token(settings)

    open_page(nojs_page, f"{live_server}/u/{token}")
    nojs_page.get_by_role("button", name="Unsubscribe").click()

    expect(nojs_page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    shot(nojs_page, "nojs-unsubscribe-done")
    assert suppression_sources() == ["web"]


def test_check_ins_work_without_javascript(
    settings: Settings, live_server: str, nojs_page: Page
) -> None:
    token = message_token(settings)

    open_page(nojs_page, f"{live_server}/c/{token}/ok")
    nojs_page.get_by_role("button", name="Yes, healing as expected").click()
    expect(nojs_page.get_by_role("heading", level=1)).to_have_text("Thank you")

    open_page(nojs_page, f"{live_server}/c/{token}/ok")
    nojs_page.get_by_role("link", name="Tell us what you notice").click()
    expect(nojs_page).to_have_url(re.compile(r"/c/[^/]+/worried$"))
    nojs_page.get_by_label(re.compile("^Redness, warmth or itching")).check()
    nojs_page.get_by_role("button", name=re.compile("^Send to")).click()
    expect(nojs_page.get_by_role("heading", level=1)).to_have_text("Call Riverside Skin Clinic now")
    shot(nojs_page, "nojs-checkin-urgent")

    assert check_ins() == [("fine", []), ("urgent", ["worse"])]
