"""Load benchmark of the clinic REST API: enrollments per second, and latency at a steady rate.

    .venv/bin/python bench/api_load.py [--enrollments N] [--clients C] [--rate R] [--seconds S]

One run, in this order (see bench/README.md, "API load benchmark"):
1. setup: database `dripcare_bench_api_<pid>` (created, migrated, dropped at the end), one
   clinic (with the shipped campaigns) and one API key; the per-key rate limit is lifted
   through the environment;
2. server: `dripcare serve --port <free> --workers 2` as a subprocess, ready when /healthz is 200;
3. throughput: N `POST /api/v1/enrollments` (each a new patient inline and a full 7-message
   sequence) from C concurrent clients in this process; clock from the first send to the last
   answer; every answer must be 201;
4. baseline: N enrollments through `enroll()` on one thread of this process, no HTTP (the
   server idles); the throughput phase's rate divided by this one is printed as a ratio,
   which moves far less between machines than the rates do;
5. latency: open loop at R requests/s for S seconds (request i is due at t0 + i/R, whether or
   not earlier answers came back; `--connections` senders take them in order, as wrk2 does),
   again new enrollments by default; a request's latency counts from its due time, so a
   server that falls behind shows in the figures instead of slowing the sender down;
6. checks: the database holds exactly the enrollments (and 7 messages each) answered 201, plus
   at most the requests that timed out on this side.

CPU seconds per process group (server, PostgreSQL, this process, anything else) are read from
/proc around each timed phase. `--py-spy DIR` records the server processes with py-spy during
the throughput phase (collapsed stacks, plus a summary of where the time went).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from keepalive_client import HTTPError, KeepAliveClient, Response

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# Per run, so two runs at once (two checkouts on one machine) never drop each other's database.
DB_NAME = f"dripcare_bench_api_{os.getpid()}"
PG_ADMIN_URL = os.environ.get(
    "DRIPCARE_BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("DRIPCARE_BENCH_BROKER", "redis://127.0.0.1:6379/14")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SEQUENCE_LENGTH = 7  # messages of the shipped microneedling campaign
AIMS = {"enrollments_per_s": 300.0, "p99_ms": 50.0}
CPU_GROUPS = ("server", "postgresql", "bench")  # "bench" is this process: the load generator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--enrollments", "-n", type=int, default=2000, help="throughput phase (2000)")
    p.add_argument("--clients", "-c", type=int, default=8, help="concurrent clients (8)")
    p.add_argument(
        "--bulk",
        type=int,
        default=0,
        help="throughput phase through POST /enrollments:bulk, this many items per request",
    )
    p.add_argument("--rate", type=float, default=100.0, help="latency phase requests/s (100)")
    p.add_argument("--seconds", type=float, default=20.0, help="latency phase length (20)")
    p.add_argument(
        "--connections", type=int, default=32, help="latency phase connections/senders (32)"
    )
    p.add_argument(
        "--client",
        choices=["lean", "httpx"],
        default="lean",
        help="HTTP client of the timed phases: lean (bench/keepalive_client.py, the default)\n"
        "or httpx (~10x its CPU per request, taken from the server it measures)",
    )
    p.add_argument("--workers", type=int, default=2, help="`dripcare serve --workers` (2)")
    p.add_argument("--warmup", type=int, default=50, help="untimed enrollments first (50)")
    p.add_argument(
        "--latency-request",
        choices=["enroll", "get-enrollment", "list-messages"],
        default="enroll",
        help="what the latency phase sends (enroll: POST /enrollments)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="before each timed phase, wait up to this many seconds for the machine to be\n"
        "quiet (other processes < 15%% of it); 0 skips the wait (120)",
    )
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-baseline", action="store_true", help="no in-process enroll() baseline")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--py-spy", type=Path, default=None, help="record the server into DIR")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE env for the server")
    p.add_argument("--json", type=Path, default=None, help="write the figures to FILE")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    p.add_argument(
        "--database",
        default=DB_NAME,
        help="PostgreSQL database to drop, create and use (dripcare_bench_api_<pid>)",
    )
    return p.parse_args(argv)


# ---- setup ------------------------------------------------------------------------------------


def db_url(name: str) -> str:
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)


def recreate_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()


def drop_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def server_env(database: str, extra: list[str]) -> dict[str, str]:
    env = {
        **os.environ,
        "DRIPCARE_DATABASE_URL": db_url(database),
        "DRIPCARE_BROKER_URL": BROKER_URL,
        "DRIPCARE_API_RATE_PER_SECOND": "100000",
        "DRIPCARE_API_RATE_BURST": "100000",
        "DRIPCARE_SMTP_URL": "console://",
    }
    for item in extra:
        key, _, value = item.partition("=")
        env[key if key.startswith("DRIPCARE_") else f"DRIPCARE_{key.upper()}"] = value
    return env


def migrate_and_seed(env: dict[str, str]) -> tuple[str, int]:
    """Migrate with dripcare.migrations.upgrade(); one clinic and one key: (key, clinic id)."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("DRIPCARE_")})
    from dripcare import db
    from dripcare.migrations import upgrade
    from dripcare.people.apikeys import create_key
    from dripcare.people.clinic_setup import create_clinic

    db.reset()
    upgrade()
    with db.session_scope() as session:
        clinic = create_clinic(
            session,
            name="Bench Clinic",
            sender="care@bench.example",
            phone="+1 555 010 0199",
            timezone="America/New_York",
        )
        key = create_key(session, clinic.id, "api-load").plaintext
        clinic_id = clinic.id
    db.reset()
    return key, clinic_id


def in_process(counter: Counter, clinic_id: int, n: int, warmup: int) -> float:
    """n enrollments through `enroll()` and a commit each, on one thread of this process.

    The baseline: the domain's own speed on this machine, without HTTP, FastAPI, the key
    check or a second core for Python. The API's rate divided by it changes far less from
    machine to machine than the rate itself. Returns the seconds the n took.
    """
    from dripcare import db
    from dripcare.config import get_settings
    from dripcare.outbox.enrollment_input import EnrollRequest
    from dripcare.outbox.enrollments import enroll

    settings = get_settings()

    def request(body: dict[str, object]) -> EnrollRequest:
        patient = body["patient"]
        assert isinstance(patient, dict)
        return EnrollRequest(
            clinic_id=clinic_id,
            email=patient["email"],
            first_name=patient["first_name"],
            treated_at=str(body["treated_at"]),
            external_id=str(body["external_id"]),
        )

    untimed = [request(counter.enrollment()) for _ in range(warmup)]
    timed = [request(counter.enrollment()) for _ in range(n)]
    for req in untimed:
        with db.session_scope() as session:
            enroll(session, req, settings)
    start = time.perf_counter()
    for req in timed:
        with db.session_scope() as session:
            enroll(session, req, settings)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def pids(self) -> list[int]:
        """The server and its worker processes (uvicorn's supervisor spawns the workers)."""
        return descendants(self.proc.pid)

    def workers(self) -> list[int]:
        return [pid for pid in self.pids() if pid != self.proc.pid and is_uvicorn_worker(pid)]


def start_server(env: dict[str, str], workers: int, log_path: Path) -> Server:
    port = free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(VENV_BIN / "dripcare"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            healthy = httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200
            # and every worker is up (one /healthz answer proves only one of them is)
            if healthy and len(server.workers()) >= workers:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server not healthy within 60 s; see {log_path}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGINT)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=5)


# ---- /proc accounting -------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces; the fields after it are space-separated
    head, _, rest = raw.rpartition(")")
    pid_text, _, name = head.partition(" (")
    return [pid_text, name, *rest.split()]


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid in all_pids():
        fields = _stat(pid)
        if fields:
            children[int(fields[3])].append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def is_uvicorn_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # multiprocessing spawn children: python -c "from multiprocessing.spawn import spawn_main..."
    return b"spawn_main" in cmdline


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    if not fields:
        return 0.0
    # utime + stime, + cutime + cstime: children that exited (PostgreSQL backends of closed
    # connections, reaped by the postmaster) count for their parent's group
    return sum(int(fields[i]) for i in (13, 14, 15, 16)) / CLK_TCK


def comm(pid: int) -> str:
    fields = _stat(pid)
    return fields[1] if fields else ""


def machine_cpu() -> tuple[float, float]:
    """(busy, total) seconds over all cores since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / CLK_TCK, sum(parts) / CLK_TCK


class CpuMeter:
    """CPU seconds per group between start() and stop(): server, postgres, bench, other.

    "bench" is this process's own clock (time.process_time), read inside the /proc scans: the
    load generator's work, not the meter's (~20 ms a scan, and ~60 ms for pg_sessions).
    """

    def __init__(self, server: Server, database: str) -> None:
        self.server = server
        self.database = database

    def _sample(self) -> dict[str, float]:
        server_pids = set(self.server.pids())
        workers = set(self.server.workers())
        groups: dict[str, float] = collections.defaultdict(float)
        for pid in all_pids():
            if pid in workers:
                groups[f"worker {pid}"] = cpu_seconds(pid)
            if pid in server_pids:
                group = "server"
            elif pid == os.getpid():
                continue
            elif comm(pid) == "postgres":
                group = "postgresql"
            else:
                group = "other"
            groups[group] += cpu_seconds(pid)
        busy, total = machine_cpu()
        groups["machine"] = busy
        groups["wall_cores"] = total
        return groups

    def start(self) -> None:
        self.sessions = pg_sessions(self.database)  # first: its CPU is not the phase's
        self.before = self._sample()
        self.t0 = time.monotonic()
        self.bench0 = time.process_time()

    def stop(self) -> dict[str, float]:
        bench = time.process_time() - self.bench0
        elapsed = time.monotonic() - self.t0
        after = self._sample()
        delta = {k: after.get(k, 0.0) - self.before.get(k, 0.0) for k in after}
        delta["bench"] = bench
        # "other" also gains processes that exited or started in between; clamp the noise
        delta["other"] = max(
            0.0, delta["machine"] - delta["server"] - delta["postgresql"] - delta["bench"]
        )
        delta["elapsed"] = elapsed
        delta["pg_sessions"] = pg_sessions(self.database) - self.sessions
        return delta


def pg_sessions(database: str) -> int:
    """Sessions ever opened on the bench database (pg_stat_database.sessions, PostgreSQL 14+)."""
    engine = sa.create_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT sessions FROM pg_stat_database WHERE datname = :name"),
                {"name": database},
            ).scalar()
    except sa.exc.DBAPIError:
        value = None
    engine.dispose()
    return int(value or 0)


def cpu_line(delta: dict[str, float]) -> str:
    cores = delta["wall_cores"] / delta["elapsed"] if delta["elapsed"] else 0
    parts = [f"{name} {delta[name]:.1f}s" for name in (*CPU_GROUPS, "other")]
    busy = delta["machine"] / delta["wall_cores"] * 100 if delta["wall_cores"] else 0
    # an uneven split means the workers' keep-alive connections were uneven too
    workers = "/".join(f"{v:.1f}" for k, v in sorted(delta.items()) if k.startswith("worker "))
    return (
        f"  cpu: {', '.join(parts)} (workers {workers}); "
        f"machine {busy:.0f}% busy of {cores:.0f} cores; "
        f"{delta['pg_sessions']:.0f} new PostgreSQL sessions"
    )


def per_request_line(delta: dict[str, float], requests: int, note: str) -> str:
    """CPU per HTTP request of each group: steadier than the rates, and it shows what the load
    generator (`bench`) takes from the server it measures."""
    parts = [f"{name} {delta[name] / requests * 1000:.2f} ms" for name in CPU_GROUPS]
    return f"  cpu per request: {', '.join(parts)} ({note})"


def wait_quiet(limit: float, threshold: float = 0.15) -> float:
    """Wait until the machine is < threshold busy for 2 s in a row (our server is idle
    between phases); returns the busy share seen last."""
    deadline = time.monotonic() + limit
    quiet_for, share = 0, 1.0
    while True:
        busy0, total0 = machine_cpu()
        time.sleep(1.0)
        busy1, total1 = machine_cpu()
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        quiet_for = quiet_for + 1 if share < threshold else 0
        if quiet_for >= 2 or time.monotonic() >= deadline:
            return share


def contention_warning(delta: dict[str, float]) -> str | None:
    share = delta["other"] / delta["wall_cores"] if delta["wall_cores"] else 0
    if share < 0.10:
        return None
    return (
        f"  WARNING: other processes used {share * 100:.0f}% of the machine during this phase; "
        "the figures are lower than on a quiet machine"
    )


# ---- load -------------------------------------------------------------------------------------


@dataclass
class Counter:
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    next: int = 0

    def enrollment(self) -> dict[str, object]:
        i = self.next
        self.next += 1
        # spread over the coming weeks: every message of the sequence is scheduled, none skipped
        treated = datetime.now(UTC) + timedelta(hours=1 + (i % 700))
        return {
            "patient": {"email": f"p{i}.{self.run}@bench.example", "first_name": f"Pat{i}"},
            "treated_at": treated.replace(microsecond=0).isoformat(),
            "external_id": f"bench-{self.run}-{i}",
        }


def encode_json(payload: object) -> bytes:
    """Compact JSON, as httpx's `json=` sends it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class HttpxClient:
    """KeepAliveClient's interface on httpx (`--client httpx`), to compare the two."""

    def __init__(self, base_url: str, key: str, connections: int) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> Response:
        headers = {"Content-Type": content_type} if body else None
        try:
            answer = await self.http.request(method, path, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            raise HTTPError(f"{method} {path}: {type(exc).__name__} {exc}") from exc
        return Response(answer.status_code, dict(answer.headers), answer.content)

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.aclose()


def client(kind: str, base_url: str, key: str, connections: int) -> KeepAliveClient | HttpxClient:
    if kind == "httpx":
        return HttpxClient(base_url, key, connections)
    return KeepAliveClient(base_url, {"Authorization": f"Bearer {key}"})


def failure_name(exc: HTTPError) -> str:
    """What went wrong, as the answers count it: e.g. ReadTimeout, ConnectionResetError."""
    return type(exc.__cause__ or exc).__name__


async def enroll_many(
    kind: str, base_url: str, key: str, counter: Counter, n: int, clients: int, bulk: int = 0
) -> tuple[float, collections.Counter[int], list[float]]:
    """n enrollments from `clients` concurrent loops; (seconds, status counts, latencies).

    With `bulk`, each request is a `POST /enrollments:bulk` of that many items, and the counts
    are per item (201 for "created", else 200/422 as the single endpoint would answer).
    """
    statuses: collections.Counter[int] = collections.Counter()
    latencies: list[float] = []
    remaining = n

    async with client(kind, base_url, key, clients) as http:

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0:
                size = min(bulk, remaining) if bulk else 1
                remaining -= size
                t = time.perf_counter()
                if bulk:
                    items = [counter.enrollment() for _ in range(size)]
                    body = encode_json({"items": items})
                    response = await http.request("POST", "/api/v1/enrollments:bulk", body)
                    results = json.loads(response.body)["data"] if response.status == 200 else []
                    for result in results:
                        statuses[{"created": 201, "existing": 200}.get(result["status"], 422)] += 1
                    if len(results) < size:  # the whole request failed
                        statuses[response.status] += size - len(results)
                else:
                    body = encode_json(counter.enrollment())
                    response = await http.request("POST", "/api/v1/enrollments", body)
                    statuses[response.status] += 1
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return elapsed, statuses, latencies


async def open_loop(
    client_kind: str,
    base_url: str,
    key: str,
    counter: Counter,
    rate: float,
    seconds: float,
    kind: str,
    connections: int,
) -> tuple[list[float], list[float], collections.Counter[int | str]]:
    """Request i is due at t0 + i/rate, whether or not earlier answers came back.

    `connections` senders take the due requests in order (as wrk2 does): while the server keeps
    up, every request leaves on time; when it does not, requests wait in line here and their
    latency, counted from the due time, shows it (no coordinated omission), without the client
    melting down under thousands of open requests. Returns (latencies from the due time, send
    lags, answers by status code or exception name).
    """
    n = int(rate * seconds)
    latencies: list[float] = [0.0] * n
    lags: list[float] = [0.0] * n
    answers: collections.Counter[int | str] = collections.Counter()
    async with client(client_kind, base_url, key, connections) as http:
        enrollment_id = 1
        if kind == "get-enrollment":
            body = encode_json(counter.enrollment())
            created = await http.request("POST", "/api/v1/enrollments", body)
            enrollment_id = json.loads(created.body)["id"]

        async def request() -> Response:
            if kind == "enroll":
                body = encode_json(counter.enrollment())
                return await http.request("POST", "/api/v1/enrollments", body)
            if kind == "get-enrollment":
                return await http.request("GET", f"/api/v1/enrollments/{enrollment_id}")
            return await http.request("GET", "/api/v1/messages?limit=50")

        t0 = time.perf_counter() + 0.05
        next_index = 0

        async def sender() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                lags[i] = time.perf_counter() - due
                try:
                    answers[(await request()).status] += 1
                except HTTPError as exc:  # e.g. a read timeout when the server is swamped
                    answers[failure_name(exc)] += 1
                latencies[i] = time.perf_counter() - due

        await asyncio.gather(*(sender() for _ in range(connections)))
    return latencies, lags, answers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# ---- profiling --------------------------------------------------------------------------------


def start_py_spy(server: Server, out: Path) -> list[subprocess.Popen[bytes]]:
    out.mkdir(parents=True, exist_ok=True)
    py_spy = VENV_BIN / "py-spy"
    if not py_spy.exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    procs = []
    for pid in server.workers():
        procs.append(
            subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--gil",
                    "--output",
                    str(out / f"worker-{pid}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(1.0)  # let py-spy attach before the clock starts
    return procs


def stop_py_spy(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def summarize_profile(out: Path, top: int = 25) -> str:
    """Share of samples whose stack passes through each dripcare/library frame (inclusive)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf_modules: collections.Counter[str] = collections.Counter()
    total = 0
    for path in out.glob("worker-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            seen = set()
            for frame in frames:
                name = _frame_label(frame)
                if name and name not in seen:
                    seen.add(name)
                    inclusive[name] += count
            leaf_modules[_module_of(frames[-1])] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} busy samples; inclusive share of the hottest frames:"]
    for name, count in inclusive.most_common(top):
        lines.append(f"  {count / total * 100:5.1f}%  {name}")
    lines.append("  self time by module:")
    for name, count in leaf_modules.most_common(12):
        lines.append(f"  {count / total * 100:5.1f}%  {name}")
    return "\n".join(lines)


def _frame_label(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file-ish)"
    if "(" not in frame:
        return ""
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("/src/dripcare/", "/site-packages/"):
        if marker in path:
            return f"{func} ({path.split(marker, 1)[1]})"
    return f"{func} ({Path(path).name})"


def _module_of(frame: str) -> str:
    _, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    if "/src/dripcare/" in path:
        return "dripcare/" + path.split("/src/dripcare/", 1)[1]
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0]
    return Path(path).name or frame


# ---- main -------------------------------------------------------------------------------------


def check_database(database: str) -> tuple[int, int]:
    engine = sa.create_engine(db_url(database))
    with engine.connect() as conn:
        enrollments = conn.execute(sa.text("SELECT count(*) FROM enrollments")).scalar_one()
        messages = conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one()
    engine.dispose()
    return int(enrollments), int(messages)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    code = os.environ.get("PYTHONPATH", "") or "installed package"
    print(
        f"code: {code}; machine: {os.cpu_count()} cores; server workers: {args.workers}; "
        f"client: {args.client}"
    )
    recreate_database(args.database)
    env = server_env(args.database, args.set)
    key, clinic_id = migrate_and_seed(env)
    figures: dict[str, object] = {
        "workers": args.workers,
        "clients": args.clients,
        "client": args.client,
    }
    failed = False
    created = unknown = 0
    log_dir = Path(tempfile.mkdtemp(prefix="dripcare-api-load-"))
    server = start_server(env, args.workers, log_dir / "server.log")
    try:
        counter = Counter()
        meter = CpuMeter(server, args.database)
        if args.warmup:
            _, statuses, _ = asyncio.run(
                enroll_many(args.client, server.base_url, key, counter, args.warmup, args.clients)
            )
            created += statuses.get(201, 0)

        if not args.skip_throughput:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            spies = start_py_spy(server, args.py_spy) if args.py_spy else []
            meter.start()
            elapsed, statuses, latencies = asyncio.run(
                enroll_many(
                    args.client,
                    server.base_url,
                    key,
                    counter,
                    args.enrollments,
                    args.clients,
                    args.bulk,
                )
            )
            cpu = meter.stop()
            stop_py_spy(spies)
            created += statuses.get(201, 0)
            rate = args.enrollments / elapsed
            print(
                f"enrollments: {args.enrollments} in {elapsed:.2f} s = {rate:.0f}/s "
                f"({args.clients} clients{f', bulk of {args.bulk}' if args.bulk else ''}; "
                f"latency p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 99) * 1000:.1f} ms)"
            )
            requests = -(-args.enrollments // args.bulk) if args.bulk else args.enrollments
            print(cpu_line(cpu))
            print(per_request_line(cpu, requests, f"{args.client} client"))
            if warning := contention_warning(cpu):
                print(warning)
            if set(statuses) != {201}:
                print(f"  FAILED: statuses {dict(statuses)} (all must be 201)")
                failed = True
            figures["throughput"] = {
                "enrollments": args.enrollments,
                "seconds": elapsed,
                "per_s": rate,
                "statuses": dict(statuses),
                "cpu": cpu,
            }
            if args.py_spy:
                print(f"  py-spy ({args.py_spy}):")
                print(summarize_profile(args.py_spy))

        if not args.skip_baseline:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            meter.start()
            elapsed = in_process(counter, clinic_id, args.enrollments, args.warmup)
            cpu = meter.stop()
            created += args.enrollments + args.warmup
            base = args.enrollments / elapsed
            print(
                f"baseline: {args.enrollments} in {elapsed:.2f} s = {base:.0f}/s "
                "(enroll() and a commit each, one thread of this process: no HTTP, no key check)"
            )
            print(per_request_line(cpu, args.enrollments, "bench is the baseline itself"))
            figures["baseline"] = {"enrollments": args.enrollments, "per_s": base, "cpu": cpu}
            if "throughput" in figures:
                ratio = figures["throughput"]["per_s"] / base  # type: ignore[index]
                print(
                    f"ratio api/baseline: {ratio:.2f} "
                    f"({args.workers} server workers and HTTP against one thread in-process)"
                )
                figures["ratio"] = ratio

        if not args.skip_latency:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            meter.start()
            latencies, lags, answers = asyncio.run(
                open_loop(
                    args.client,
                    server.base_url,
                    key,
                    counter,
                    args.rate,
                    args.seconds,
                    args.latency_request,
                    args.connections,
                )
            )
            cpu = meter.stop()
            if args.latency_request == "get-enrollment":
                created += 1  # the enrollment it reads
            if args.latency_request == "enroll":
                created += answers.get(201, 0)
                # a request that timed out here may still have committed there
                unknown += sum(v for k, v in answers.items() if isinstance(k, str))
            ms = [x * 1000 for x in latencies]
            p50, p99, worst = percentile(ms, 50), percentile(ms, 99), max(ms)
            print(
                f"latency at {args.rate:.0f}/s for {args.seconds:.0f} s ({args.latency_request}, "
                f"{len(ms)} requests): p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms "
                f"(mean {statistics.fmean(ms):.1f} ms; send lag max {max(lags) * 1000:.1f} ms)"
            )
            print(cpu_line(cpu))
            print(per_request_line(cpu, len(ms), f"{args.client} client"))
            if warning := contention_warning(cpu):
                print(warning)
            ok = {201} if args.latency_request == "enroll" else {200}
            if set(answers) != ok:
                print(f"  FAILED: answers {dict(answers)}")
                failed = True
            figures["latency"] = {
                "request": args.latency_request,
                "rate": args.rate,
                "requests": len(ms),
                "p50_ms": p50,
                "p99_ms": p99,
                "max_ms": worst,
                "statuses": dict(answers),
                "cpu": cpu,
            }
    finally:
        stop_server(server)

    enrollments, messages = check_database(args.database)
    if not created <= enrollments <= created + unknown or messages != enrollments * SEQUENCE_LENGTH:
        print(
            f"FAILED: database holds {enrollments} enrollments and {messages} messages; "
            f"expected {created} (+ up to {unknown} timed out) and {SEQUENCE_LENGTH} each"
        )
        failed = True
    else:
        print(f"checks: {enrollments} enrollments, {messages} messages in the database (ok)")
    aims = []
    if "throughput" in figures:
        per_s = figures["throughput"]["per_s"]  # type: ignore[index]
        aims.append(
            f"throughput {'met' if per_s >= AIMS['enrollments_per_s'] else 'MISSED'} "
            f"(aim >= {AIMS['enrollments_per_s']:.0f}/s)"
        )
    if "latency" in figures:
        p99 = figures["latency"]["p99_ms"]  # type: ignore[index]
        aims.append(
            f"p99 {'met' if p99 < AIMS['p99_ms'] else 'MISSED'} "
            f"(aim < {AIMS['p99_ms']:.0f} ms at 100/s)"
        )
    print("aims: " + "; ".join(aims))
    print(f"server log: {server.log_path}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    if not args.keep_db:
        drop_database(args.database)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
