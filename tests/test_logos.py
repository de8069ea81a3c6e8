"""Clinic logos: uploaded on the branding page, sniffed, kept in the database, served by us."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable

import httpx
import pytest

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import Clinic
from dripcare.sending.message_view import load_jobs, render_job
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory, csrf_of

Browse = Callable[..., AdminBrowser]


def png() -> bytes:
    """A real 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x0f\x76\x6e")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def upload(browser: AdminBrowser, name: str, data: bytes, kind: str) -> httpx.Response:
    token = csrf_of(browser.get("/admin/branding"))
    files = {"logo": (name, data, kind)}
    return browser.client.post("/admin/branding/logo", data={"csrf_token": token}, files=files)


def stored_logo_url(clinic_id: int) -> str:
    with session_scope() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        return clinic.logo_url


def test_an_uploaded_logo_is_served_by_us_and_in_the_emails(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    data = png()

    answer = upload(browser, "logo.png", data, "image/png")
    path = stored_logo_url(a.clinic_id)
    served = browser.get(path)
    with session_scope() as session:
        (job,) = load_jobs(session, [a.upcoming_id])
        rendered, _ = render_job(job, settings)

    assert answer.status_code == 303
    digest = hashlib.sha256(data).hexdigest()[:16]
    assert path == f"/logos/{a.clinic_id}-{digest}.png"
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "max-age=31536000" in served.headers["cache-control"]
    assert f'src="https://care.test{path}"' in rendered.html
    assert browser.get(f"/logos/{a.clinic_id}-{'0' * 16}.png").status_code == 404


def test_a_logo_upload_changes_only_the_admins_clinic(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    before = stored_logo_url(b.clinic_id)

    upload(browser_for(a.admin_email), "logo.png", png(), "image/png")

    assert stored_logo_url(a.clinic_id).startswith(f"/logos/{a.clinic_id}-")
    assert stored_logo_url(b.clinic_id) == before


@pytest.mark.parametrize(
    ("name", "data", "kind", "message"),
    [
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>',
            "image/svg+xml",
            "PNG, JPEG or WebP",
        ),
        ("logo.png", b"GIF89a" + b"\x00" * 40, "image/png", "PNG, JPEG or WebP"),
        ("logo.png", png() + b"\x00" * 200_000, "image/png", "at most 200000 bytes"),
    ],
)
def test_a_logo_that_is_not_a_small_png_jpeg_or_webp_is_refused(
    browser_for: Browse, a: ClinicWithHistory, name: str, data: bytes, kind: str, message: str
) -> None:
    before = stored_logo_url(a.clinic_id)

    answer = upload(browser_for(a.admin_email), name, data, kind)

    assert answer.status_code == 422
    assert 'id="logo-error"' in answer.text and message in answer.text
    assert stored_logo_url(a.clinic_id) == before


def test_an_old_logo_url_shows_in_emails_only_from_an_allowed_host(
    settings: Settings, a: ClinicWithHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None
        clinic.logo_url = "https://cdn.riverside.example/logo.png"

    def rendered_html() -> str:
        with session_scope() as session:
            (job,) = load_jobs(session, [a.upcoming_id])
            return render_job(job, get_settings())[0].html

    refused = rendered_html()
    monkeypatch.setenv("DRIPCARE_LOGO_HOSTS", "cdn.riverside.example")
    get_settings.cache_clear()
    allowed = rendered_html()

    assert "cdn.riverside.example" not in refused
    assert 'src="https://cdn.riverside.example/logo.png"' in allowed
