"""The `dripcare` command as scripts and people use it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from dripcare.cli import main
from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import Clinic, Enrollment, Message
from tests.conftest import configure, free_port
from tests.factories import DAYTIME

CLINIC = [
    "clinic",
    "create",
    "--name",
    "Riverside",
    "--sender",
    "care@riverside.example",
    "--phone",
    "+1 555 010 0100",
    "--timezone",
    "America/New_York",
    "--default-campaign",  # two shipped campaigns: enrolling without one needs a default
    "microneedling",
]


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    """The CLI reads the clock (late emails are skipped): every test runs on DAYTIME's day."""
    with time_machine.travel(DAYTIME, tick=True):
        yield


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def clinic_id(settings: Settings) -> int:
    return int(run_json(*CLINIC)["id"])


def enroll_args(clinic_id: int, *extra: str) -> list[str]:
    return [
        "enroll",
        "--clinic",
        str(clinic_id),
        "--email",
        "pat@example.com",
        "--first-name",
        "Pat",
        "--treated-at",
        "2026-11-24T14:30",
        *extra,
    ]


def test_clinic_create_installs_the_default_campaigns(settings: Settings) -> None:
    data = run_json(*CLINIC)

    assert data["campaigns"] == ["chemical-peel", "microneedling"]
    listed = {c["slug"]: c for c in run_json("campaign", "list", "--clinic", str(data["id"]))}
    assert listed["microneedling"]["steps"][0] == "day-0"
    assert "day-28" in listed["chemical-peel"]["steps"]


def test_enroll_prints_the_timeline_and_is_idempotent(clinic_id: int) -> None:
    first = run_json(*enroll_args(clinic_id, "--external-id", "bk-7"))
    again = run_json(*enroll_args(clinic_id, "--external-id", "bk-7"))
    text = run("timeline", str(first["id"]))

    assert first["created"] is True and again["created"] is False
    assert [m["step"] for m in first["messages"]][:3] == ["day-0", "day-1", "day-3"]
    assert first["messages"][1]["due_local"] == "2026-11-25T09:00:00-05:00"
    assert first["messages"][1]["due_at"] == "2026-11-25T14:00:00+00:00"
    assert count(Message) == 7
    assert "day-1    2026-11-25 09:00 local  scheduled" in text.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "nope"], "invalid email address 'nope'"),
        (["--timezone", "Nowhere/City"], "unknown time zone 'Nowhere/City'"),
        (["--treatment", "laser"], "has no campaign 'laser'"),
        (["--treated-at", "1900-01-01"], "out of range"),
        (["--treated-at", "last tuesday"], "not an ISO date"),
    ],
)
def test_bad_input_gives_one_clear_line_exit_2_and_writes_nothing(
    clinic_id: int, args: list[str], message: str
) -> None:
    result = run(*enroll_args(clinic_id), *args)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert (count(Enrollment), count(Message)) == (0, 0)


def test_clinic_quiet_hours_are_shown_set_and_reset(clinic_id: int) -> None:
    shown = run("clinic", "quiet-hours", str(clinic_id)).output
    assert "21:00-08:00 (DRIPCARE_QUIET_HOURS)" in shown

    assert run_json("clinic", "quiet-hours", str(clinic_id), "22:00-09:00")["quiet_hours"] == (
        "22:00-09:00"
    )
    refused = run("clinic", "quiet-hours", str(clinic_id), "10pm")
    assert refused.exit_code == 2 and "must look like 21:00-08:00" in refused.stderr
    assert run_json("clinic", "quiet-hours", str(clinic_id), "default")["quiet_hours"] is None


def test_clinic_create_refuses_a_bad_time_zone(settings: Settings) -> None:
    args = [a if a != "America/New_York" else "EST5EDT/Nope" for a in CLINIC]

    result = run(*args)

    assert result.exit_code == 2 and "unknown time zone" in result.stderr
    assert count(Clinic) == 0


def test_cancel_and_reschedule(clinic_id: int) -> None:
    enrollment = run_json(*enroll_args(clinic_id))["id"]

    moved = run_json("reschedule", str(enrollment), "--treated-at", "2026-11-25T14:30")
    cancelled = run_json("cancel", str(enrollment))

    assert moved["moved"] == 7
    assert moved["messages"][1]["due_local"].startswith("2026-11-26T09:00")
    assert cancelled["cancelled_messages"] == 7
    assert {m["status"] for m in run_json("timeline", str(enrollment))["messages"]} == {"cancelled"}


def test_unknown_enrollment_is_a_clear_error(settings: Settings) -> None:
    result = run("timeline", "4242")

    assert result.exit_code == 2 and "no enrollment with id 4242" in result.stderr


def test_status_counts_every_status_by_name(clinic_id: int) -> None:
    run_json(*enroll_args(clinic_id))

    data = run_json("status")

    assert data["scheduled"] == 7
    assert data["sent"] == 0 and data["failed"] == 0 and "cancelled" in data
    assert data["next_due_at"] is not None


CSV = """email,first_name,last_name,treated_at,timezone,treatment,external_id,notes
ana@example.com,Ana,Lee,2026-11-24T10:00,Europe/London,microneedling,a1,first visit
bad-address,Bo,Ng,2026-11-24,,,b2,
cy@example.com,Cy,Ox,24/11/2026,,,c3,
dee@example.com,Dee,Fox,2026-11-23,America/Chicago,,,returning
eve@example.com,Eve,Ray,2026-11-23,Mars/Base,,e5,
"""


def test_import_csv_reports_bad_rows_by_line_and_reruns_without_duplicates(
    clinic_id: int, tmp_path: Path
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(CSV, encoding="utf-8")

    first = run("import-csv", str(path), "--clinic", str(clinic_id), "--json")
    second = run("import-csv", str(path), "--clinic", str(clinic_id), "--json")

    report, again = json.loads(first.stdout), json.loads(second.stdout)
    assert first.exit_code == 1  # some rows were rejected
    assert report["created"] == 2
    assert [(r["line"], r["reason"].split(" ")[0]) for r in report["rejected"]] == [
        (3, "invalid"),
        (4, "treated_at"),
        (6, "unknown"),
    ]
    assert (again["created"], again["existing"]) == (0, 2)
    assert count(Enrollment) == 2 and count(Message) == 14


def test_import_csv_without_required_columns_is_refused(clinic_id: int, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("mail,date\nx@example.com,2026-11-24\n", encoding="utf-8")

    result = run("import-csv", str(path), "--clinic", str(clinic_id))

    assert result.exit_code == 2
    assert "lacks email, treated_at" in result.stderr


def test_preview_writes_html_and_text(settings: Settings, tmp_path: Path) -> None:
    data = run_json("preview", "microneedling", "day-3", "--out", str(tmp_path))

    html = Path(data["html"]).read_text(encoding="utf-8")
    text = Path(data["text"]).read_text(encoding="utf-8")
    assert data["subject"].startswith("Day 3")
    assert "<html" in html and "How is your skin today?" in html
    assert "call 911 now" in text and "<" not in text.split("\n")[0]


def test_preview_of_an_unknown_step_names_the_steps(settings: Settings) -> None:
    result = run("preview", "microneedling", "day-99")

    assert result.exit_code == 2 and "day-0, day-1" in result.stderr


def test_campaign_import_updates_the_clinic_copy_and_bumps_the_version(
    clinic_id: int, tmp_path: Path
) -> None:
    source = get_settings().templates_dir / "microneedling"
    copy = tmp_path / "microneedling"
    shutil.copytree(source, copy)
    manifest = copy / "campaign.toml"
    manifest.write_text(
        manifest.read_text().replace("Caring for your skin today", "Your skin tonight"),
        encoding="utf-8",
    )

    data = run_json("campaign", "import", str(copy), "--clinic", str(clinic_id))
    preview = run_json(
        "preview",
        "microneedling",
        "day-0",
        "--clinic",
        str(clinic_id),
        "--out",
        str(tmp_path / "p"),
    )

    assert data["version"] == 2 and len(data["steps"]) == 7
    assert preview["subject"] == "Your skin tonight"


def test_campaign_import_of_a_broken_directory_is_refused(clinic_id: int, tmp_path: Path) -> None:
    result = run("campaign", "import", str(tmp_path), "--clinic", str(clinic_id))

    assert result.exit_code == 2 and "has no campaign.toml" in result.stderr


def test_db_upgrade_creates_a_fresh_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import configure

    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=f"sqlite:///{tmp_path}/new.db")

    result = run("db", "upgrade")

    assert result.exit_code == 0 and "up to date" in result.output
    assert count(Clinic) == 0  # the tables exist


def peel_dir(tmp_path: Path) -> Path:
    """A second campaign directory: microneedling's, as "peel"."""
    copy = tmp_path / "peel"
    shutil.copytree(get_settings().templates_dir / "microneedling", copy)
    manifest = (copy / "campaign.toml").read_text(encoding="utf-8")
    manifest = manifest.replace('slug = "microneedling"', 'slug = "peel"')
    (copy / "campaign.toml").write_text(manifest, encoding="utf-8")
    return copy


def test_with_two_campaigns_enrolling_must_name_one_until_the_clinic_has_a_default(
    clinic_id: int, tmp_path: Path
) -> None:
    assert (
        run("campaign", "import", str(peel_dir(tmp_path)), "--clinic", str(clinic_id)).exit_code
        == 0
    )
    csv_path = tmp_path / "patients.csv"
    csv_path.write_text("email,treated_at\nann@example.com,2026-11-24\n", encoding="utf-8")
    assert run("clinic", "update", str(clinic_id), "--default-campaign", "none").exit_code == 0

    refused = run(*enroll_args(clinic_id))
    csv_refused = json.loads(
        run("import-csv", str(csv_path), "--clinic", str(clinic_id), "--json").stdout
    )
    wrong_default = run("clinic", "update", str(clinic_id), "--default-campaign", "tattoo")
    set_default = run_json("clinic", "update", str(clinic_id), "--default-campaign", "peel")
    enrolled = run_json(*enroll_args(clinic_id))
    named = run_json(*enroll_args(clinic_id, "--treatment", "microneedling"))

    assert refused.exit_code == 2
    assert "which campaign? this clinic has: chemical-peel, microneedling, peel" in refused.output
    assert csv_refused["created"] == 0
    assert "which campaign?" in csv_refused["rejected"][0]["reason"]
    assert wrong_default.exit_code == 2 and "has no campaign 'tattoo'" in wrong_default.output
    assert set_default == {"id": clinic_id, "default_campaign": "peel"}
    assert (enrolled["campaign"], named["campaign"]) == ("peel", "microneedling")


def test_a_database_without_the_schema_says_to_run_db_upgrade(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=f"sqlite:///{tmp_path / 'new.db'}")

    result = run("status")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: the database has no dripcare tables yet")
    assert "`dripcare db upgrade`" in result.stderr and "Traceback" not in result.output


def test_a_database_that_is_down_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=url)

    result = run(
        "enroll", "--clinic", "1", "--email", "a@example.com", "--treated-at", "2026-11-24"
    )

    assert result.exit_code == 2
    assert result.stderr == (
        "error: database down: connection refused; check that it runs and DRIPCARE_DATABASE_URL "
        "points at it\n"
    )
