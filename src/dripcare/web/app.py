"""The web application: the clinic REST API under /api/v1 (OpenAPI at /openapi.json), the
patients' pages, and the admin under /admin."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from dripcare.config import get_settings
from dripcare.rate_limits import make_limiter
from dripcare.web import errors, prometheus, webhooks
from dripcare.web.admin import (
    audit,
    auth,
    branding,
    campaigns,
    dashboard,
    escalation,
    home,
    outbox,
    patient_data,
    red_flags,
    sending,
    views,
)
from dripcare.web.api import checkins, enrollments, health, messages, patients
from dripcare.web.api import red_flags as api_red_flags
from dripcare.web.middleware import RequestLog, outside_the_body_limit
from dripcare.web.pages import checkin, common, logos, preferences, staff_ack, unsubscribe

DESCRIPTION = """
Enroll patients' treatments and follow their aftercare emails.

Authenticate with a clinic API key (`dripcare apikey create --clinic ID`) as
`Authorization: Bearer <key>`. Every object belongs to one clinic: another clinic's ids
answer 404. POSTs accept an `Idempotency-Key` header; retries with the same key get the
first answer.
"""

# The admin's routers, each mounted under /admin (one module per group of pages).
ADMIN_PAGE_GROUPS = (
    dashboard,
    home,
    auth,
    campaigns,
    outbox,
    branding,
    sending,
    patient_data,
    audit,
    red_flags,
    escalation,
)
API_PREFIX, ADMIN_PREFIX = "/api/v1", "/admin"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Everything loaded at start-up lives as long as the process: moving it out of the
    # collector's sight keeps full collections, and the pauses they add to requests, short.
    gc.freeze()
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    # /docs serves Swagger UI's files itself: FastAPI's default page loads them from a CDN,
    # and shows nothing on a network that cannot reach it.
    app = FastAPIOffline(
        title="dripcare",
        version=version("dripcare"),
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        static_url="/static/docs",
        lifespan=_lifespan,
        max_body_size=settings.api_max_body_bytes,  # 413 whether announced or streamed
    )
    app.state.limiter = make_limiter(settings)
    app.add_middleware(RequestLog, prefixes=(API_PREFIX, ADMIN_PREFIX))
    outside_the_body_limit(app, settings.api_max_body_bytes)  # announced: a 413 problem too
    errors.install(app)
    common.install(app)
    v1 = APIRouter(prefix=API_PREFIX)
    for module in (patients, enrollments, messages, checkins, api_red_flags):
        v1.include_router(module.router)
    v1.include_router(health.router)
    app.include_router(v1)
    app.include_router(health.router, include_in_schema=False)
    app.include_router(prometheus.router)
    app.include_router(unsubscribe.router)
    app.include_router(checkin.router)
    app.include_router(staff_ack.router)
    app.include_router(preferences.router)
    app.include_router(logos.router)
    app.include_router(webhooks.router)
    views.install(app)
    for page_group in ADMIN_PAGE_GROUPS:
        app.include_router(page_group.router, prefix=ADMIN_PREFIX, include_in_schema=False)
    return app
