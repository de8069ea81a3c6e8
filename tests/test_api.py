"""The clinic REST API, as a clinic's developer uses it, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from dripcare.config import Settings, get_settings
from dripcare.content.campaign_versions import import_campaign
from dripcare.content.campaigns import load_campaign_dir
from dripcare.db import get_engine, session_scope
from dripcare.migrations import alembic_config, code_head
from dripcare.models import Clinic as ClinicRow
from dripcare.models import Enrollment, IdempotentRequest, Message, Patient
from dripcare.people.apikeys import create_key, revoke_key
from dripcare.web.app import create_app
from dripcare.web.schemas import PatientIn
from tests.api_fixtures import Clinic, new_key
from tests.conftest import configure
from tests.factories import make_clinic

ENROLL = {
    "patient": {"email": "ana@example.com", "first_name": "Ana"},
    "treated_at": "2026-11-24T14:30:00-05:00",
    "external_id": "bk-1",
}


@pytest.fixture
def clinic_b(client: TestClient) -> Clinic:
    return Clinic(client, "Clinic B", "care@b.example")


def test_enroll_see_the_timeline_reschedule_and_cancel(clinic_a: Clinic) -> None:
    created = clinic_a.post("/enrollments", ENROLL)
    enrollment = created.json()
    moved = clinic_a.patch(f"/enrollments/{enrollment['id']}", {"treated_at": "2026-11-25"})
    cancelled = clinic_a.post(f"/enrollments/{enrollment['id']}/cancel")

    assert created.status_code == 201
    assert [m["step"] for m in enrollment["messages"]] == [
        "day-0",
        "day-1",
        "day-3",
        "day-7",
        "day-14",
        "day-28",
        "day-42",
    ]
    assert enrollment["messages"][1]["due_at"] == "2026-11-25T14:00:00Z"
    assert enrollment["messages"][1]["due_local"] == "2026-11-25T09:00:00-05:00"
    assert moved.status_code == 200
    assert moved.json()["messages"][1]["due_local"] == "2026-11-26T09:00:00-05:00"
    assert {m["status"] for m in cancelled.json()["messages"]} == {"cancelled"}
    assert clinic_a.get(f"/enrollments/{enrollment['id']}").json()["status"] == "cancelled"


def test_reposting_an_external_id_returns_the_existing_enrollment(clinic_a: Clinic) -> None:
    first = clinic_a.post("/enrollments", ENROLL)
    again = clinic_a.post("/enrollments", ENROLL)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(clinic_a.get("/enrollments").json()["data"]) == 1


def test_idempotency_key_replays_the_first_answer(clinic_a: Clinic) -> None:
    body = {**ENROLL, "external_id": None}
    first = clinic_a.post("/enrollments", body, headers={"Idempotency-Key": "k1"})
    replay = clinic_a.post("/enrollments", body, headers={"Idempotency-Key": "k1"})
    misuse = clinic_a.post(
        "/enrollments", {**body, "treated_at": "2026-11-20"}, headers={"Idempotency-Key": "k1"}
    )

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert misuse.status_code == 409 and "different request" in misuse.json()["detail"]


def test_enroll_an_existing_patient_by_id_in_their_zone(clinic_a: Clinic) -> None:
    patient = clinic_a.post(
        "/patients", {"email": "Bo@Example.com", "first_name": "Bo", "timezone": "Europe/London"}
    ).json()
    found = clinic_a.get("/patients", params={"email": "bo@example.com"}).json()
    enrollment = clinic_a.post(
        "/enrollments", {"patient": patient["id"], "treated_at": "2026-11-24T10:00"}
    ).json()

    assert patient["email"] == "bo@example.com"
    assert found["data"][0]["id"] == patient["id"]
    assert enrollment["timezone"] == "Europe/London"
    assert enrollment["messages"][1]["due_at"] == "2026-11-25T09:00:00Z"


def test_patch_patient_and_duplicate_email_is_refused(clinic_a: Clinic) -> None:
    one = clinic_a.post("/patients", {"email": "one@example.com"}).json()
    clinic_a.post("/patients", {"email": "two@example.com"})

    renamed = clinic_a.patch(f"/patients/{one['id']}", {"first_name": "Uno"})
    clash = clinic_a.patch(f"/patients/{one['id']}", {"email": "two@example.com"})
    again = clinic_a.post("/patients", {"email": "one@example.com"})

    assert renamed.json()["first_name"] == "Uno"
    assert clash.status_code == 422 and "another patient" in clash.json()["errors"][0]["msg"]
    assert again.status_code == 422 and "exists already" in again.json()["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**ENROLL, "colour": "blue"}, "extra"),
        ({**ENROLL, "patient": {"email": "nope"}}, "invalid email address"),
        ({**ENROLL, "timezone": "Mars/Base"}, "unknown time zone"),
        ({**ENROLL, "campaign": "laser"}, "has no campaign 'laser'"),
        ({**ENROLL, "treated_at": "yesterday"}, "treated_at"),
        ({**ENROLL, "treated_at": "1990-01-01"}, "out of range"),
    ],
)
def test_bad_input_is_422_with_a_field_level_message(
    clinic_a: Clinic, body: dict, needle: str
) -> None:
    response = clinic_a.post("/enrollments", body)

    assert response.status_code == 422
    assert needle in str(response.json())
    assert clinic_a.get("/enrollments").json()["data"] == []


def test_a_malformed_id_is_a_json_422_and_an_unknown_path_a_json_404(clinic_a: Clinic) -> None:
    malformed = clinic_a.get("/patients/abc")
    unknown = clinic_a.get("/no-such-resource")

    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["loc"] == ["path", "patient_id"]
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "Not Found")
    assert unknown.headers["content-type"] == "application/problem+json"


def test_bulk_is_atomic_per_row(clinic_a: Clinic) -> None:
    items = [
        ENROLL,
        {**ENROLL, "patient": {"email": "bad"}, "external_id": "x"},
        {**ENROLL, "patient": {"email": "cy@example.com"}, "external_id": "bk-3"},
        ENROLL,
        {
            **ENROLL,
            "patient": {"email": "late@example.com"},
            "external_id": "bk-4",
            "treated_at": "1999-12-31",
        },
        {**ENROLL, "patient": 4242, "external_id": "bk-5"},
    ]

    response = clinic_a.post("/enrollments:bulk", {"items": items})

    statuses = [r["status"] for r in response.json()["data"]]
    assert response.status_code == 200
    assert statuses == ["created", "error", "created", "existing", "error", "error"]
    assert "invalid email address" in response.json()["data"][1]["error"]
    assert "out of range" in response.json()["data"][4]["error"]
    assert "no patient with id 4242" in response.json()["data"][5]["error"]
    assert len(clinic_a.get("/enrollments").json()["data"]) == 2
    assert clinic_a.get("/patients", params={"email": "late@example.com"}).json()["data"] == []


def test_list_enrollments_pages_with_a_cursor_and_filters(clinic_a: Clinic) -> None:
    for n in range(5):
        clinic_a.post(
            "/enrollments",
            {**ENROLL, "external_id": f"e{n}", "patient": {"email": f"p{n}@example.com"}},
        )
    first = clinic_a.get("/enrollments", params={"limit": 2}).json()
    second = clinic_a.get(
        "/enrollments", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    last = clinic_a.get("/enrollments", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    patient_id = first["data"][0]["patient_id"]
    mine = clinic_a.get("/enrollments", params={"patient_id": patient_id}).json()

    ids = [e["id"] for page in (first, second, last) for e in page["data"]]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert (first["has_more"], last["has_more"], last["next_cursor"]) == (True, False, None)
    assert [e["patient_id"] for e in mine["data"]] == [patient_id]
    assert clinic_a.get("/enrollments", params={"status": "cancelled"}).json()["data"] == []


def test_messages_list_and_detail_with_subject_and_history(clinic_a: Clinic) -> None:
    clinic_a.post("/enrollments", ENROLL)

    page = clinic_a.get("/messages", params={"status": "scheduled", "limit": 3}).json()
    detail = clinic_a.get(f"/messages/{page['data'][0]['id']}").json()
    later = clinic_a.get("/messages", params={"since": "2030-01-01T00:00:00Z"}).json()

    assert len(page["data"]) == 3 and page["has_more"] is True
    assert detail["subject"] == "Caring for your skin today"
    assert detail["message_id"].startswith("<") and detail["deliveries"] == []
    assert later["data"] == []


def test_no_key_a_wrong_key_or_a_revoked_key_is_401(client: TestClient, clinic_a: Clinic) -> None:
    with session_scope() as session:
        issued = create_key(session, clinic_a.id)
    with session_scope() as session:
        revoke_key(session, issued.key.id)

    missing = client.get("/api/v1/enrollments")
    wrong = client.get("/api/v1/enrollments", headers={"Authorization": "Bearer dc_x_y"})
    revoked = client.get(
        "/api/v1/enrollments", headers={"Authorization": f"Bearer {issued.plaintext}"}
    )

    assert [r.status_code for r in (missing, wrong, revoked)] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"] == "Bearer"


def test_tenant_isolation_on_every_endpoint(clinic_a: Clinic, clinic_b: Clinic) -> None:
    enrollment = clinic_a.post("/enrollments", ENROLL).json()
    patient_id, message_id = enrollment["patient_id"], enrollment["messages"][0]["id"]
    e = enrollment["id"]

    attempts = {
        "GET patient": clinic_b.get(f"/patients/{patient_id}"),
        "PATCH patient": clinic_b.patch(f"/patients/{patient_id}", {"first_name": "X"}),
        "GET enrollment": clinic_b.get(f"/enrollments/{e}"),
        "PATCH enrollment": clinic_b.patch(f"/enrollments/{e}", {"treated_at": "2026-11-25"}),
        "POST cancel": clinic_b.post(f"/enrollments/{e}/cancel"),
        "GET message": clinic_b.get(f"/messages/{message_id}"),
        "POST enrollment for A's patient": clinic_b.post(
            "/enrollments", {"patient": patient_id, "treated_at": "2026-11-24"}
        ),
    }
    lists = {
        "patients by email": clinic_b.get("/patients", params={"email": "ana@example.com"}),
        "enrollments": clinic_b.get("/enrollments"),
        "enrollments of A's patient": clinic_b.get(
            "/enrollments", params={"patient_id": patient_id}
        ),
        "messages": clinic_b.get("/messages"),
    }

    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 404)
    assert all("ana" not in r.text for r in attempts.values())
    assert {name: r.json()["data"] for name, r in lists.items()} == {key: [] for key in lists}
    untouched = clinic_a.get(f"/enrollments/{e}").json()
    assert untouched["status"] == "active" and untouched["treated_at"].startswith("2026-11-24")


def test_oversized_body_is_413(clinic_a: Clinic) -> None:
    response = clinic_a.post("/enrollments:bulk", {"items": [ENROLL] * 20000})

    assert response.status_code == 413


def test_oversized_body_streamed_without_a_length_is_413(clinic_a: Clinic) -> None:
    chunk = b'{"items": [' + b", ".join([json.dumps(ENROLL).encode()] * 1000) + b", "

    def body() -> Iterator[bytes]:
        yield from [chunk] * 20

    response = clinic_a.client.post(
        "/api/v1/enrollments:bulk",
        content=body(),
        headers={**clinic_a.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert "detail" in response.json()


def test_rate_limit_answers_429_with_retry_after(
    database: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,  # type: ignore[arg-type]
        DRIPCARE_API_RATE_PER_SECOND="0.01",
        DRIPCARE_API_RATE_BURST="3",
    )
    with TestClient(create_app()) as client:
        clinic = Clinic(client, "Busy", "care@busy.example")
        statuses = [clinic.get("/enrollments").status_code for _ in range(4)]
        limited = clinic.get("/enrollments")

    assert statuses == [200, 200, 200, 429]
    assert int(limited.headers["Retry-After"]) >= 1


def test_no_free_database_connection_is_503_with_retry_after(
    pg_database: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=pg_database,  # type: ignore[arg-type]
        DRIPCARE_DB_POOL_SIZE="1",
        DRIPCARE_DB_POOL_TIMEOUT="0.2",
    )
    with TestClient(create_app()) as client:
        clinic = Clinic(client, "Busy", "care@busy.example")
        engine = get_engine()
        held = [engine.connect(), engine.connect()]  # the pool (1) and its overflow (1)
        try:
            busy = clinic.get("/enrollments")
        finally:
            for connection in held:
                connection.close()
        free = clinic.get("/enrollments")

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert "retry" in busy.json()["detail"]
    assert free.status_code == 200


def test_start_up_objects_are_kept_out_of_the_collector(settings: Settings) -> None:
    gc.unfreeze()
    with TestClient(create_app()):
        assert gc.get_freeze_count() > 1000


class Race:
    """Another request inserts a row first and commits only once ours waits on its unique index."""

    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic

    def __call__(
        self,
        insert: Callable[[int], sa.Executable],
        path: str,
        body: object,
        method: str = "post",
        **kw: object,
    ) -> httpx.Response:
        # The pool is left last: if this fails, our lock goes first and the request can end.
        with ThreadPoolExecutor(1) as pool, get_engine().connect() as other:
            other.execute(insert(self.clinic.id))
            answer = pool.submit(getattr(self.clinic, method), path, body, **kw)
            wait_for_a_lock_wait(other)
            other.commit()
            return answer.result(timeout=60)


@pytest.fixture
def race(pg_database: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Race]:
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=pg_database)  # type: ignore[arg-type]
    with TestClient(create_app()) as client:
        yield Race(Clinic(client, "Race", "care@race.example"))


def ana(clinic_id: int) -> sa.Executable:
    return sa.insert(Patient).values(
        clinic_id=clinic_id, email="ana@example.com", first_name="Ana", locale="en"
    )


def rows_of(clinic_id: int, model: type[Patient | Enrollment | Message]) -> int:
    with session_scope() as session:
        return int(session.scalar(sa.select(sa.func.count()).where(model.clinic_id == clinic_id)))


def test_a_concurrent_first_enrollment_of_the_same_patient_is_answered(race: Race) -> None:
    """Another request inserts the patient first; ours waits on the unique index, fails, retries."""
    response = race(ana, "/enrollments", ENROLL)

    assert response.status_code == 201
    assert len(response.json()["messages"]) == 7
    assert rows_of(race.clinic.id, Patient) == 1


def test_a_bulk_request_that_meets_a_concurrent_first_enrollment_is_answered(race: Race) -> None:
    """The middle item waits on another request's patient; the whole request runs again."""
    items = [
        {**ENROLL, "patient": {"email": f"{name}@example.com"}, "external_id": f"bk-{name}"}
        for name in ("bea", "ana", "cy")
    ]
    response = race(ana, "/enrollments:bulk", {"items": items})

    assert response.status_code == 200, response.text
    assert [item["status"] for item in response.json()["data"]] == ["created"] * 3
    for model, rows in ((Patient, 3), (Enrollment, 3), (Message, 21)):
        assert rows_of(race.clinic.id, model) == rows, model


def test_a_concurrent_post_of_the_same_patient_gets_the_usual_error(race: Race) -> None:
    response = race(ana, "/patients", {"email": "ana@example.com", "first_name": "Ana"})

    assert response.status_code == 422, response.text
    assert "exists already" in response.text
    assert rows_of(race.clinic.id, Patient) == 1


def test_a_concurrent_change_to_a_taken_email_gets_the_usual_error(race: Race) -> None:
    bo = race.clinic.post("/patients", {"email": "bo@example.com"}).json()["id"]
    response = race(ana, f"/patients/{bo}", {"email": "ana@example.com"}, method="patch")

    assert response.status_code == 422, response.text
    assert "another patient has email" in response.text
    assert race.clinic.get(f"/patients/{bo}").json()["email"] == "bo@example.com"


def test_a_concurrent_first_use_of_an_idempotency_key_replays_the_winner(race: Race) -> None:
    """Two sends of one request, racing: the loser answers with the winner's stored answer."""
    body = {"email": "bo@example.com", "first_name": "Bo"}
    fingerprint = hashlib.sha256(
        f"POST /patients\n{PatientIn(**body).model_dump_json()}".encode()  # type: ignore[arg-type]
    ).hexdigest()

    def winner(clinic_id: int) -> sa.Executable:
        return sa.insert(IdempotentRequest).values(
            clinic_id=clinic_id,
            key="k-1",
            fingerprint=fingerprint,
            status_code=201,
            body='{"winner": true}',
            created_at=datetime.now(UTC),
        )

    response = race(winner, "/patients", body, headers={"Idempotency-Key": "k-1"})

    assert response.status_code == 201
    assert response.json() == {"winner": True}
    assert response.headers["Idempotent-Replayed"] == "true"
    assert rows_of(race.clinic.id, Patient) == 0  # the loser's own insert was rolled back


def wait_for_a_lock_wait(connection: sa.Connection) -> None:
    """Until another session of this database waits on a lock (ours holds it)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    probe = get_engine().connect()
    try:
        for _ in range(3000):
            if probe.execute(query).scalar_one():
                return
            probe.rollback()
            time.sleep(0.01)
    finally:
        probe.close()
    raise AssertionError("the request never waited on the patient's unique index")


def test_the_request_log_names_routes_and_clinics_not_patients(
    clinic_a: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dripcare.api")
    clinic_a.post("/enrollments", ENROLL)
    clinic_a.get("/patients?email=ana@example.com")

    lines = [record.getMessage() for record in caplog.records]
    assert "POST /api/v1/enrollments 201" in lines[0]
    assert lines[0].endswith(f"clinic={clinic_a.id}")
    assert "GET /api/v1/patients 200" in lines[1]
    assert "ana@example.com" not in caplog.text
    assert "Ana" not in caplog.text


REFUSE_ANA = {
    "sqlite": [
        # SQLite's messages take no values; its statement's parameters would carry them
        "CREATE TRIGGER refuse_ana BEFORE INSERT ON patients "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_ana() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'refused % %', NEW.email, NEW.first_name; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_ana BEFORE INSERT ON patients "
        "FOR EACH ROW EXECUTE FUNCTION refuse_ana()",
    ],
}


@pytest.fixture
def faulty_patients_table(database: str) -> Iterator[None]:
    """A database fault whose error message names the patient (a trigger refusing the row)."""
    engine = get_engine()
    with engine.begin() as conn:
        for statement in REFUSE_ANA[engine.dialect.name]:
            conn.execute(sa.text(statement))
    yield
    if engine.dialect.name == "postgresql":  # SQLite's file is the test's own
        with engine.begin() as conn:
            conn.execute(sa.text("DROP FUNCTION refuse_ana() CASCADE"))


def test_an_unexpected_error_is_a_500_logged_without_the_patients_data(
    faulty_patients_table: None, clinic_a: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = clinic_a.post("/enrollments", ENROLL)

    assert response.status_code == 500
    assert response.json()["detail"] == "internal error; it has been logged"
    assert response.json()["code"] == "internal_error"
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "unexpected error in POST /api/v1/enrollments" in error.getMessage()
    assert "message withheld" in error.getMessage()
    assert "enroll" in error.getMessage()  # the frames are there, to find the fault
    assert "ana@example.com" not in caplog.text
    assert "Ana" not in caplog.text
    assert "POST /api/v1/enrollments 500" in caplog.records[-1].getMessage()


def test_admin_security_headers_stay_on_the_admin(client: TestClient) -> None:
    admin = client.get("/admin/sign-in")
    api = client.get("/healthz")

    assert "frame-ancestors" in admin.headers["content-security-policy"]
    assert admin.headers["cache-control"] == "no-store"
    assert "content-security-policy" not in api.headers


def test_health_and_readiness(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/api/v1/healthz"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_readiness_names_the_schema_revision_the_code_expects(client: TestClient) -> None:
    head = code_head()
    older = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    key = new_key(make_clinic())
    set_version = sa.text("UPDATE alembic_version SET version_num = :v")
    with get_engine().begin() as conn:
        conn.execute(set_version, {"v": older})
    try:
        behind = client.get("/readyz", headers={"Authorization": f"Bearer {key}"})
        stranger = client.get("/readyz")
    finally:
        with get_engine().begin() as conn:
            conn.execute(set_version, {"v": head})
    again = client.get("/readyz")

    assert behind.status_code == 503
    assert behind.json()["database"] == f"error: schema at {older}, code expects {head}"
    assert stranger.json()["database"] == "error"  # the revision only to an operator
    assert again.status_code == 200


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    assert "/api/v1/enrollments/{enrollment_id}/cancel" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert client.get("/docs").status_code == 200


# ---- a real server ----------------------------------------------------------------------------


def test_a_real_server_enrolls_as_the_readme_shows(live_server: str) -> None:
    clinic_id = make_clinic()
    key = new_key(clinic_id)
    treated = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {key}"}) as http:
        created = http.post(
            "/api/v1/enrollments",
            json={
                "patient": {"email": "ana@example.com", "first_name": "Ana"},
                "treated_at": treated,
                "external_id": "booking-123",
            },
        )
        timeline = http.get(f"/api/v1/enrollments/{created.json()['id']}")
        health = http.get("/healthz")

    assert created.status_code == 201
    assert timeline.json()["external_id"] == "booking-123"
    assert len(timeline.json()["messages"]) == 7
    assert health.json()["status"] == "ok"


def test_the_enroll_answer_is_the_stored_timeline(clinic_a: Clinic) -> None:
    """The 201 is built from the rows just written; a later GET reads them back."""
    created = clinic_a.post("/enrollments", ENROLL)
    stored = clinic_a.get(f"/enrollments/{created.json()['id']}")

    assert created.status_code == 201
    assert created.json() == stored.json()
    assert [m["step"] for m in created.json()["messages"]][:2] == ["day-0", "day-1"]


def test_an_enrollment_naming_no_campaign_follows_the_clinics_default_or_asks(
    clinic_a: Clinic,
) -> None:
    spec = load_campaign_dir(get_settings().templates_dir / "microneedling")
    with session_scope() as session:
        clinic = session.get_one(ClinicRow, clinic_a.id)
        import_campaign(session, clinic, dataclasses.replace(spec, slug="peel"))
        clinic.default_campaign = None

    ambiguous = clinic_a.post("/enrollments", ENROLL)
    bulk = clinic_a.post("/enrollments:bulk", {"items": [ENROLL]})
    with session_scope() as session:
        session.get_one(ClinicRow, clinic_a.id).default_campaign = "peel"
    followed = clinic_a.post("/enrollments", ENROLL)

    assert ambiguous.status_code == 422
    assert "which campaign? this clinic has: chemical-peel, microneedling, peel" in str(
        ambiguous.json()
    )
    assert "which campaign?" in bulk.json()["data"][0]["error"]
    assert (followed.status_code, followed.json()["campaign"]) == (201, "peel")
