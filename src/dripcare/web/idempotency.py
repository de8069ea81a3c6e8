"""Idempotency-Key on POSTs: a retry with the same key gets the first answer, not a second write.

The stored answer is written in the same transaction as the change it describes, so either
both exist or neither does; two concurrent first attempts meet on the unique key, and the
second is run again and replays the first's answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.db import again_on_conflict
from dripcare.models import IdempotentRequest
from dripcare.web.errors import ApiError

Handler = Callable[[], tuple[int, Any]]


def respond(
    session: Session,
    clinic_id: int,
    key: str | None,
    route: str,
    payload: BaseModel,
    run: Handler,
) -> Response:
    """Run the handler once per key; commit; answer (or replay the stored answer).

    A request that meets a concurrent one creating the same patient, external id or key is
    run again whole (every item of a bulk one), and answers as a repeat would.
    """
    return again_on_conflict(
        session, lambda: _respond_once(session, clinic_id, key, route, payload, run)
    )


def _respond_once(
    session: Session, clinic_id: int, key: str | None, route: str, payload: BaseModel, run: Handler
) -> Response:
    if not key:
        status, body = run()
        session.commit()
        return _json(_encode(body), status)
    fingerprint = hashlib.sha256(f"{route}\n{payload.model_dump_json()}".encode()).hexdigest()
    stored = _stored(session, clinic_id, key)
    if stored is not None:
        return _replay(stored, fingerprint)
    status, body = run()
    encoded = _encode(body)
    session.add(
        IdempotentRequest(
            clinic_id=clinic_id,
            key=key,
            fingerprint=fingerprint,
            status_code=status,
            body=encoded.decode(),
        )
    )
    session.commit()
    return _json(encoded, status)


def _encode(body: Any) -> bytes:
    """Pydantic writes a model's JSON itself, several times faster than jsonable_encoder."""
    if isinstance(body, BaseModel):
        return body.model_dump_json().encode()
    return json.dumps(jsonable_encoder(body), separators=(",", ":")).encode()


def _json(content: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(content, status, headers, media_type="application/json")


def _stored(session: Session, clinic_id: int, key: str) -> IdempotentRequest | None:
    return session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.clinic_id == clinic_id, IdempotentRequest.key == key
        )
    )


def _replay(stored: IdempotentRequest, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request; "
            "use a new key for a new request",
        )
    return _json(stored.body.encode(), stored.status_code, {"Idempotent-Replayed": "true"})
