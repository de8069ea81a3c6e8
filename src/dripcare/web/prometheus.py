"""GET /metrics for Prometheus, behind a bearer token.

The numbers name clinics by id and show volumes, no patient; still, they are the business's
own figures, so production answers only with DRIPCARE_METRICS_TOKEN set and presented. In
development, with no token set, /metrics is open so `make run` can be scraped as it is.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Header, HTTPException, Response
from starlette.concurrency import run_in_threadpool

from dripcare import metrics
from dripcare.config import get_settings

router = APIRouter(tags=["monitoring"])
# The text format every Prometheus reads; our names need none of 1.0.0's escaping.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", include_in_schema=False)
async def scrape(authorization: str = Header("")) -> Response:
    _check_token(authorization)
    body = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=TEXT_FORMAT)


def _check_token(authorization: str) -> None:
    settings = get_settings()
    if not settings.metrics_token:
        if settings.env == "development":
            return
        raise HTTPException(
            403,
            "/metrics is off: set DRIPCARE_METRICS_TOKEN on the API and give Prometheus the same "
            "token (authorization: credentials)",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.encode(), settings.metrics_token.encode()
    ):
        raise HTTPException(
            401,
            "/metrics needs Authorization: Bearer <DRIPCARE_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
