"""GET /logos/<clinic>-<hash>.<ext>: clinics' uploaded logos, for emails and the admin.

Public, as an email's images must be. The hash in the name changes with the content, so the
logo is cached for a year; nosniff keeps browsers to the type we sniffed on upload.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from dripcare.people import logos
from dripcare.web.deps import SessionDep

router = APIRouter(include_in_schema=False)
CACHED = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


@router.get(logos.PREFIX + "{name}")
def logo(name: str, session: SessionDep) -> Response:
    found = logos.find(session, name)
    if found is None:
        return Response("no such logo", status_code=404, media_type="text/plain")
    return Response(found.data, media_type=found.content_type, headers=CACHED)
