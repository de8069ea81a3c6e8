"""docker-compose.yml, run without Docker: every dripcare service's command, with the
environment Compose would give it, as an unprivileged user in a working directory it cannot
write, against the local PostgreSQL, Redis and an SMTP server. A patient's email must arrive.

Compose's service hostnames become 127.0.0.1 and the test's own ports; the container paths
of its tmpfs mounts become directories that only the unprivileged user can write.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from dripcare.devserver import daytime_zone
from tests import compose_file, unprivileged
from tests.compose_file import ROOT, Service
from tests.conftest import REDIS_URL, free_port, fresh_pg_database
from tests.smtp_server import SMTPServer

DRIPCARE = Path(sys.executable).parent / "dripcare"  # the one beside this interpreter
DRIPCARE_SERVICES = {"migrate", "worker", "api", "beat"}
MAILPIT_SMTP = "smtp://mailpit:1025"  # what .env.example says to use with --profile dev
PATIENT = "ana.compose@example.com"
# make test-later: the services run as far ahead as the test
TEST_CLOCK = ("PYTHONPATH", "DRIPCARE_TEST_DAYS_AHEAD")


def test_env_example_documents_every_variable_the_compose_file_requires() -> None:
    documented = compose_file.read_env_file(compose_file.ENV_EXAMPLE)
    assert compose_file.required_variables() <= set(documented)
    assert compose_file.required_variables() >= {"DRIPCARE_SECRET_KEY", "POSTGRES_PASSWORD"}


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = compose_file.COMPOSE_FILE.read_text()
    for key, value in re.findall(r"^\s*(\w*(?:PASSWORD|SECRET|AUTH)\w*):\s*(.+)$", text, re.M):
        assert value.strip().startswith("${"), f"{key} is written in docker-compose.yml"
    assert not re.search(r"://\w+:(?!\$\{)[^@/]+@", text), "a URL carries a literal password"


def test_mail_readers_without_a_login_are_only_in_a_profile(tmp_path: Path) -> None:
    services = compose_file.load(_env_file(tmp_path, MAILPIT_SMTP))
    assert services["mailpit"].profiles == ["dev"]
    assert services["flower"].profiles == ["flower"]
    always = [name for name, service in services.items() if not service.profiles]
    assert set(always) == DRIPCARE_SERVICES | {"postgres", "redis"}
    for name in DRIPCARE_SERVICES - {"migrate"}:
        assert services[name].healthcheck, f"{name} has no healthcheck"
        assert services[name].spec["image"] == "dripcare:latest"


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"DRIPCARE_SMTP_URL={MAILPIT_SMTP}\n")
    with pytest.raises(compose_file.InterpolationError, match=r"DRIPCARE_SECRET_KEY|POSTGRES"):
        compose_file.load(env)


def _env_file(directory: Path, smtp_url: str, **extra: str) -> Path:
    """The operator's .env: .env.example filled in."""
    values = compose_file.read_env_file(compose_file.ENV_EXAMPLE) | {
        "DRIPCARE_SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "DRIPCARE_SMTP_URL": smtp_url,
        **extra,
    }
    path = directory / ".env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


# ---- the stack, run as its containers would be -----------------------------------------------


@dataclass
class Stack:
    """The host's stand-ins for the compose file's services, ports and mounts."""

    database_url: str
    smtp: SMTPServer
    scratch: Path  # removed afterwards
    cwd: Path = field(init=False)
    ports: dict[int, int] = field(default_factory=dict)
    mounts: dict[str, Path] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cwd = unprivileged.unwritable(self.scratch / "app")

    def relocate_url(self, value: str) -> str:
        parts = urlsplit(value)
        if parts.hostname == "postgres":
            url = sa.engine.make_url(self.database_url)
            return url.set(drivername=sa.engine.make_url(value).drivername).render_as_string(False)
        if parts.hostname == "redis":
            return REDIS_URL
        if parts.hostname == "mailpit":
            return self.smtp.url
        assert parts.hostname in (None, "localhost"), f"unknown host in {value!r}"
        return value

    def relocate(self, value: str) -> str:
        """One argument or environment value, as seen on this host."""
        value = self.relocate_url(value) if "://" in value else value
        for container_path, host_path in self.mounts.items():
            if value == container_path or value.startswith(container_path + "/"):
                value = str(host_path) + value[len(container_path) :]
        value = value.replace("--host=0.0.0.0", "--host=127.0.0.1")
        for container_port, host_port in self.ports.items():
            value = value.replace(f"--port={container_port}", f"--port={host_port}")
        return value

    def prepare(self, service: Service) -> tuple[list[str], dict[str, str]]:
        for container_path in service.mounts:
            if container_path not in self.mounts:
                name = container_path.strip("/").replace("/", "-")
                self.mounts[container_path] = unprivileged.give_to_nobody(self.scratch / name)
        for mapping in service.spec.get("ports", []):
            container_port = int(str(mapping).rsplit(":", 1)[1])
            self.ports.setdefault(container_port, free_port())
        env = {key: self.relocate(value) for key, value in service.environment.items()}
        env |= {"PATH": f"{DRIPCARE.parent}:/usr/bin:/bin", "HOME": "/nonexistent"}
        env |= {key: os.environ[key] for key in TEST_CLOCK if key in os.environ}
        return [self.relocate(arg) for arg in service.command], env

    def argv(self, args: list[str]) -> list[str]:
        """`dripcare ARGS` as the image's ENTRYPOINT runs it, as the unprivileged user."""
        needed = unprivileged.needed_paths(ROOT)
        staging = self.scratch / "staging"
        return unprivileged.command([str(DRIPCARE), *args], needed, staging)

    def run(self, service: Service, args: list[str], timeout: float = 120) -> str:
        """A one-off command in the service's container (`docker compose run`, `exec`)."""
        _, env = self.prepare(service)
        done = subprocess.run(
            self.argv([self.relocate(arg) for arg in args]),
            cwd=self.cwd,
            env=env,
            capture_output=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )
        output = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0, f"{service.name}: dripcare {' '.join(args)}: {output}"
        return done.stdout.decode()

    def start(self, service: Service) -> None:
        command, env = self.prepare(service)
        log = (self.scratch / f"{service.name}.log").open("wb")
        self.procs[service.name] = subprocess.Popen(
            self.argv(command),
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole, even on failure
        )

    def log(self, name: str) -> str:
        return (self.scratch / f"{name}.log").read_text(errors="replace")[-3000:]

    def healthy(self, service: Service) -> bool:
        """The service's healthcheck passes (as `docker exec` would run it)."""
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.log(name)}"
        check = service.healthcheck
        assert check and check[0] == "dripcare", f"{service.name}: healthcheck runs dripcare"
        _, env = self.prepare(service)
        argv = self.argv([self.relocate(arg) for arg in check[1:]])
        done = subprocess.run(argv, cwd=self.cwd, env=env, capture_output=True, timeout=60)
        return done.returncode == 0

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what its children left behind


@pytest.fixture
def compose_database() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own (Compose's `postgres` service)."""
    with fresh_pg_database(f"dripcare_compose_{os.getpid()}") as url:
        yield url


@pytest.fixture
def stack(compose_database: str, redis_url: str, smtp_server: SMTPServer) -> Iterator[Stack]:
    # Outside pytest's tmp_path, which is private to root: the unprivileged user needs a way in.
    scratch = Path(tempfile.mkdtemp(prefix="dripcare-compose-"))
    scratch.chmod(0o755)
    stack = Stack(compose_database, smtp_server, scratch)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def wait_for(condition, what: str, stack: Stack, limit: float = 180) -> None:  # type: ignore[no-untyped-def]
    """Poll until `condition` holds; give up with the services' logs."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {name}\n{stack.log(name)}" for name in stack.procs)
            pytest.fail(f"gave up waiting for {what}\n{logs}")
        time.sleep(0.5)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.workers
@pytest.mark.slow
def test_the_compose_stack_sends_a_patients_email_as_an_unprivileged_user(stack: Stack) -> None:
    # Given the operator's .env, with the dev profile's SMTP address and a short tick
    env_file = _env_file(stack.scratch, MAILPIT_SMTP, DRIPCARE_DISPATCH_INTERVAL="2")
    services = compose_file.load(env_file)
    runnable = {n for n, s in services.items() if s.spec.get("image", "").startswith("dripcare")}
    assert runnable - {"flower"} == DRIPCARE_SERVICES

    # When migrate runs to completion, then the long-running services start
    migrate = services["migrate"]
    stack.run(migrate, migrate.command)
    for name in ("worker", "beat", "api"):
        stack.start(services[name])
    for name in ("worker", "beat", "api"):
        wait_for(lambda n=name: stack.healthy(services[n]), f"{name}'s healthcheck", stack)

    # And a clinic enrolls a patient, the first email due now (in a zone where it is daytime)
    api = services["api"]
    clinic = json.loads(
        stack.run(
            api,
            [
                "clinic",
                "create",
                "--json",
                "--name",
                "Compose Clinic",
                "--sender",
                "care@compose.example",
                "--phone",
                "+1 555 010 0100",
                "--timezone",
                "UTC",
            ],
        )
    )
    key = json.loads(stack.run(api, ["apikey", "create", "--clinic", str(clinic["id"]), "--json"]))
    now = datetime.now(UTC)
    body = {
        "patient": {"email": PATIENT, "first_name": "Ana", "timezone": daytime_zone(now)},
        "campaign": "microneedling",
        "treated_at": (now - timedelta(hours=2, minutes=5)).isoformat(),
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.ports[8000]}/api/v1/enrollments",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key['key']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201

    # Then beat's tick, a worker and the SMTP server deliver it
    wait_for(lambda: stack.smtp.recorder.wait_for(1, timeout=0.5), "the patient's email", stack)
    assert [m["To"] for m in stack.smtp.recorder.messages] == [PATIENT]
    # And every healthcheck passes, and nothing was written to the working directory
    for name in ("worker", "beat", "api"):
        assert stack.healthy(services[name]), f"{name}'s healthcheck fails"
    assert list(stack.cwd.iterdir()) == []
    state = stack.mounts["/var/lib/dripcare"]
    assert {"beat-heartbeat"} <= {p.name for p in state.iterdir()}
