"""Schemathesis against the app's own OpenAPI: no 500s, and every answer matches the schema.

In-process through ASGI (no server), on SQLite and PostgreSQL via the `database` fixture.

* Authenticated pass (`test_api_matches_its_schema`): every request carries a live key of a
  clinic with patients, enrollments and messages; another clinic has some too (its ids must
  answer 404). Positive and negative inputs; hooks steer about half of the generated ids,
  emails, zones, campaigns and dates onto existing/accepted ones so 200/201 bodies are checked
  too (see "steering" below).
* Edge inputs (`test_edge_inputs_...`, `test_reused_idempotency_key_...`): inputs that
  random generation almost never draws (ids past the integer columns, extreme UTC offsets, NUL
  characters, a body that is not UTF-8, a reused Idempotency-Key), sent through schemathesis
  with the same checks; the edge cases run in one test per database and report every failure.
* Unauthenticated pass: no key, a non-Bearer scheme, a malformed key, a wrong secret, an
  unknown prefix and a revoked key; every operation answers 401 (with WWW-Authenticate),
  except the health endpoints.

The two fuzzing passes are marked `slow` (40-47 s, a fifth of the former quick loop): `make
test` runs them, `make test-fast` only the edge inputs. Bounded for CI (35-45 s on a 2-core
machine): derandomized, 30 examples per operation in the fuzzing phase (+ examples and
coverage phases), no example database, no stateful phase. Checks:
not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.people.apikeys import create_key, revoke_key
from dripcare.web.app import create_app
from tests.conftest import configure
from tests.factories import make_clinic, make_enrollment
from tests.fast_loop import FAST, examples

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
HEALTH_PATHS = ("/api/v1/healthz", "/api/v1/readyz")
# Treatment times inside the accepted window (2000-01-01 .. now + 1 year).
TREATED = ("2026-11-24T14:30:00-05:00", "2026-10-01", "2026-06-15T09:00:00")


def _config(
    *,
    max_examples: int,
    mode: str,
    coverage: bool,
    security_parameters: bool = True,
) -> schemathesis.Config:
    project: dict[str, Any] = {
        "generation": {
            "max-examples": max_examples,
            "deterministic": True,  # derandomize: the same cases on every run, in CI too
            "database": "none",
            "mode": mode,
            "with-security-parameters": security_parameters,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": coverage},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    }
    return schemathesis.Config.from_dict(project)


@dataclass
class Seeded:
    key: str
    revoked_key: str
    clinic_id: int


@pytest.fixture
def keys(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """Clinic A with a live and a revoked key (all the unauthenticated pass needs).

    The rate limits (per key, and per address without one) are lifted: schemathesis sends
    hundreds of requests with one key or none, and 429s (documented, so not failures) would
    only hide the answers under test.
    """
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_API_RATE_PER_SECOND="100000",
        DRIPCARE_API_RATE_BURST="100000",
    )
    clinic_a = make_clinic(name="Clinic A", sender="care@a.example")
    with session_scope() as session:
        key = create_key(session, clinic_a, "schemathesis").plaintext
        revoked = create_key(session, clinic_a, "revoked")
        revoke_key(session, revoked.key.id)
    return Seeded(key=key, revoked_key=revoked.plaintext, clinic_id=clinic_a)


@pytest.fixture
def seeded(keys: Seeded) -> Seeded:
    """Clinic A's patients, enrollments and messages, and another clinic's (B) too."""
    clinic_b = make_clinic(name="Clinic B", sender="care@b.example")
    settings = get_settings()
    clinic_a = keys.clinic_id
    make_enrollment(settings, clinic_a, TREATED[0], email="ana@example.com", external_id="bk-1")
    make_enrollment(settings, clinic_a, TREATED[1], email="bo@example.com", first_name="Bo")
    make_enrollment(settings, clinic_b, TREATED[2], email="cy@example.com")
    return keys


# ---- steering generated values towards real rows and accepted values ------------------------
# The schema cannot say "an id that exists", "a deliverable email", "an IANA zone" or "a date
# within a year", so purely random values almost always answer 404/422. The hooks below fold
# about half of the generated values onto accepted ones (deterministically, from the value), so
# that 200/201 answers, and their bodies, are checked too; the other half stays as generated.

# Rows seeded below: patients 1-3, enrollments 1-3, messages 1-21 (more appear as POSTs succeed).
# 0 and the ids of clinic B are in range too, so 404s are exercised as well as 200s.
ID_SPAN = {"message_id": 24}
DEFAULT_SPAN = 4
FOLD_BELOW = 10_000  # larger ids are sent as generated (overflow candidates)
ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo", "UTC", "Australia/Lord_Howe")


def _fold_id(name: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < FOLD_BELOW:
        return value % ID_SPAN.get(name, DEFAULT_SPAN)
    return value


def _fold_text(name: str, value: Any) -> Any:
    if not isinstance(value, str) or len(value) % 2:
        return value
    pick = zlib.crc32(value.encode("utf-8", "surrogatepass"))
    if name == "email":
        return f"p{pick % 40}@example.com"
    if name == "timezone":
        return ZONES[pick % len(ZONES)]
    if name == "campaign":
        return "microneedling"
    if name == "treated_at" and re.match(r"\d{4}-", value):
        return "2024" + value[4:]  # a leap year: every generated month-day stays a date
    return value


def _fold_fields(item: Any) -> None:
    if not isinstance(item, dict):
        return
    for name in ("email", "timezone", "campaign", "treated_at"):
        if name in item:
            item[name] = _fold_text(name, item[name])
    if "patient" in item:
        item["patient"] = _fold_id("patient", item["patient"])
        _fold_fields(item["patient"])


def _fold_body(body: Any) -> Any:
    _fold_fields(body)
    items = body.get("items") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else []:
        _fold_fields(item)
    return body


def _add_hooks(schema: Any) -> None:
    @schema.hook("map_path_parameters")
    def fold_path_ids(context: Any, path_parameters: Any) -> Any:
        if isinstance(path_parameters, dict):
            return {name: _fold_id(name, value) for name, value in path_parameters.items()}
        return path_parameters

    @schema.hook("map_query")
    def fold_query(context: Any, query: Any) -> Any:
        if isinstance(query, dict):
            query = dict(query)
            for name in ("patient_id", "enrollment_id"):
                if name in query:
                    query[name] = _fold_id(name, query[name])
            if "email" in query:
                query["email"] = _fold_text("email", query["email"])
        return query

    @schema.hook("map_body")
    def fold_body(context: Any, body: Any) -> Any:
        return _fold_body(body)


# ---- the schemas -------------------------------------------------------------------------------
# Loaded once from an app built at import (the OpenAPI document does not depend on settings);
# each test sends its cases to a fresh app built after `seeded` has configured the settings.
#
# Not `schemathesis.pytest.from_fixture`: schemathesis 4.32.5's lazy loader sets
# `request.node._nodeid`, which pytest 9.2 no longer has (AttributeError on every test).

authed = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(),
    config=_config(
        max_examples=examples(30), mode="all", coverage=not FAST, security_parameters=False
    ),
)
_add_hooks(authed)

# Provider webhooks prove themselves their provider's way (tests/test_webhooks.py), not by key.
unauthed = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(),
    config=_config(max_examples=2, mode="positive", coverage=False, security_parameters=False),
).exclude(path_regex="^/webhooks/")


@pytest.fixture
def app(seeded: Seeded) -> Any:
    return create_app()


@pytest.fixture
def bare_app(keys: Seeded) -> Any:
    return create_app()


# ---- authenticated pass -----------------------------------------------------------------------


# The fixtures are per operation, not per generated case: the cases of one operation share
# one database state, as they would against a running server.
QUIET = hypothesis_settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ]
)


@pytest.mark.slow  # the schema fuzzing: 40-47 s of `make test-fast` on its own
@authed.parametrize()
@QUIET
def test_api_matches_its_schema(case: Any, app: Any, seeded: Seeded) -> None:
    response = case.call_and_validate(app=app, headers={"Authorization": f"Bearer {seeded.key}"})
    if case.operation.path not in HEALTH_PATHS:
        assert response.status_code != 401, "a live key was refused"


# ---- inputs the fuzzer rarely draws -------------------------------------------------------------
# Each is valid per the schema, so the app must answer it with a documented status and body.
# Sent through schemathesis (`operation.Case`) so the same checks apply as to generated cases.

INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1
EDGE_CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    # ids past the database's integer columns (INTEGER on PostgreSQL, 64 bits on SQLite)
    (
        "id-int32",
        "GET",
        "/api/v1/patients/{patient_id}",
        {"path_parameters": {"patient_id": INT32_MAX + 1}},
    ),
    (
        "id-int64",
        "GET",
        "/api/v1/enrollments/{enrollment_id}",
        {"path_parameters": {"enrollment_id": INT64_MAX + 1}},
    ),
    (
        "id-negative",
        "GET",
        "/api/v1/messages/{message_id}",
        {"path_parameters": {"message_id": -(INT64_MAX + 2)}},
    ),
    ("cursor", "GET", "/api/v1/messages", {"query": {"cursor": INT64_MAX + 1}}),
    ("patient-query", "GET", "/api/v1/enrollments", {"query": {"patient_id": INT32_MAX + 1}}),
    (
        "patient-body",
        "POST",
        "/api/v1/enrollments",
        {"body": {"patient": INT32_MAX + 1, "treated_at": TREATED[1]}},
    ),
    # offsets that push a date-time past datetime.min/max when converted to UTC
    (
        "treated-max",
        "POST",
        "/api/v1/enrollments",
        {"body": {"patient": 1, "treated_at": "9999-12-31T23:59:59-23:59"}},
    ),
    (
        "reschedule-max",
        "PATCH",
        "/api/v1/enrollments/{enrollment_id}",
        {
            "path_parameters": {"enrollment_id": 1},
            "body": {"treated_at": "9999-12-31T23:59:59-23:59"},
        },
    ),
    ("since-min", "GET", "/api/v1/messages", {"query": {"since": "0001-01-01T00:00:00+23:59"}}),
    ("since-max", "GET", "/api/v1/messages", {"query": {"since": "9999-12-31T23:59:59-23:59"}}),
    # NUL characters (PostgreSQL text cannot hold them)
    (
        "nul-patch",
        "PATCH",
        "/api/v1/patients/{patient_id}",
        {"path_parameters": {"patient_id": 1}, "body": {"first_name": "A\x00"}},
    ),
    (
        "nul-create",
        "POST",
        "/api/v1/patients",
        {"body": {"email": "nul@example.com", "locale": "\x00"}},
    ),
    (
        "nul-inline",
        "POST",
        "/api/v1/enrollments",
        {
            "body": {
                "patient": {"email": "nul2@example.com", "last_name": "\x00"},
                "treated_at": TREATED[1],
            }
        },
    ),
    (
        "nul-external-id",
        "POST",
        "/api/v1/enrollments",
        {"body": {"patient": 1, "treated_at": TREATED[1], "external_id": "\x00"}},
    ),
    (
        "nul-campaign",
        "POST",
        "/api/v1/enrollments",
        {"body": {"patient": 1, "treated_at": TREATED[1], "campaign": "\x00"}},
    ),
    (
        "nul-bulk",
        "POST",
        "/api/v1/enrollments:bulk",
        {"body": {"items": [{"patient": 1, "treated_at": TREATED[1], "external_id": "\x00"}]}},
    ),
]


NOT_UTF8 = [("POST", "/api/v1/patients"), ("PATCH", "/api/v1/patients/{patient_id}")]


def test_edge_inputs_get_documented_answers(app: Any, seeded: Seeded) -> None:
    """Every edge case in one test per database (one seeding, not 15); all failures reported."""
    headers = {"Authorization": f"Bearer {seeded.key}"}
    failures = []
    for name, method, path, parts in EDGE_CASES:
        try:
            authed[path][method].Case(**parts).call_and_validate(app=app, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # collected: one must not hide the others
            failures.append(f"--- {name}: {type(exc).__name__}: {exc}")
    # Bytes that are not UTF-8, sent as JSON (schemathesis' negative mode sends such bodies)
    with TestClient(app) as client:
        for method, path in NOT_UTF8:
            response = client.request(
                method,
                path.format(patient_id=1),
                content=b"\xffD\n",
                headers={**headers, "Content-Type": "application/json"},
            )
            parts = {"path_parameters": {"patient_id": 1}} if "{" in path else {}
            try:
                authed[path][method].Case(**parts).validate_response(response)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"--- not-utf8 {method} {path}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} edge inputs failed:\n" + "\n".join(failures)


def test_reused_idempotency_key_gets_a_documented_answer(app: Any, seeded: Seeded) -> None:
    operation = authed["/api/v1/patients"]["POST"]
    headers = {"Authorization": f"Bearer {seeded.key}", "Idempotency-Key": "k-1"}

    def post(email: str) -> Any:
        return operation.Case(body={"email": email}).call_and_validate(app=app, headers=headers)

    first, replay, other = post("idem@example.com"), post("idem@example.com"), post("o@example.com")
    assert (first.status_code, replay.status_code, other.status_code) == (201, 201, 409)
    assert replay.headers.get("idempotent-replayed") == ["true"]


# ---- unauthenticated pass ---------------------------------------------------------------------


def _bad_credentials(seeded: Seeded) -> dict[str, dict[str, str]]:
    return {
        "missing": {},
        "not-bearer": {"Authorization": f"Basic {seeded.key}"},
        "malformed": {"Authorization": "Bearer not-a-dripcare-key"},
        "wrong-secret": {"Authorization": f"Bearer {seeded.key[:-4]}AAAA"},
        "unknown-prefix": {"Authorization": "Bearer dc_000000000000_" + "A" * 43},
        "revoked": {"Authorization": f"Bearer {seeded.revoked_key}"},
    }


@pytest.mark.slow  # six credentials for every case of every operation
@unauthed.parametrize()
@QUIET
def test_api_refuses_requests_without_a_live_key(case: Any, bare_app: Any, keys: Seeded) -> None:
    for kind, headers in _bad_credentials(keys).items():
        response = case.call_and_validate(app=bare_app, headers=headers)
        if case.operation.path in HEALTH_PATHS:
            assert response.status_code in (200, 503), kind
        else:
            assert response.status_code == 401, f"{kind}: {response.status_code}"
            assert response.headers.get("www-authenticate") == ["Bearer"], kind
