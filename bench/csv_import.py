"""CSV import throughput: `dripcare import-csv` of N new patients, on PostgreSQL and SQLite.

    .venv/bin/python bench/csv_import.py [-n 20000] [--baseline 2000] [--backend pg sqlite]

For each backend: a fresh database (PostgreSQL `dripcare_bench_csv`, dropped and migrated; SQLite
a new file), one clinic through `create_clinic` (the microneedling campaign, 7 steps), then:
1. **import**: the real CLI command (`import-csv FILE --clinic ID --json`, in-process through
   click's runner, progress bar included) on a generated CSV: N patients with distinct
   addresses, eight time zones, treated over the last 20 days at a few times of day, half with
   an `external_id`, and one bad row in 500 (a bad address, a bad date or an unknown zone).
2. **again**: the same file a second time (idempotency: must create nothing).
3. **baseline**: the first `--baseline` rows of another such file, into a second clinic, by
   the row-by-row code this command used before (one `enroll()` and savepoint a row, a commit
   every 200 rows), kept here as the reference. Its rate is the "before" figure.
Prints patients/s and outbox rows/s of each phase, the CPU per row imported (created or
existing) of this process and, on PostgreSQL, of the server backends this process connected to
(read from /proc: the server must run on this machine), and the ratio import/baseline. CPU per
row is steadier than the rate on a shared machine. `--runs R` repeats the whole measurement
(fresh database each time) and prints the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
ZONES = [
    "Europe/London",
    "America/Chicago",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "",
]
HEADER = "email,first_name,last_name,treated_at,timezone,treatment,external_id\n"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", "--patients", type=int, default=20_000)
    p.add_argument("--baseline", type=int, default=2_000, help="rows through the old path")
    p.add_argument("--backend", nargs="+", default=["pg", "sqlite"], choices=["pg", "sqlite"])
    p.add_argument("--database", default="dripcare_bench_csv")
    p.add_argument("--runs", type=int, default=1, help="repeat everything, print the spread")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    return p.parse_args()


def write_csv(path: Path, n: int, tag: str, seed: int = 14) -> int:
    """N rows; returns how many are bad on purpose (one in 500)."""
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(n):
            day = today - timedelta(days=rng.randrange(20))
            when = f"{day.isoformat()}T{rng.choice(['09:00', '11:30', '14:00', '16:30'])}"
            email, zone = f"{tag}{i}@example.com", ZONES[i % len(ZONES)]
            if i % 500 == 499:
                bad += 1
                kind = (i // 500) % 3
                email = "not-an-address" if kind == 0 else email
                when = "31/12/2026" if kind == 1 else when
                zone = "Mars/Base" if kind == 2 else zone
            external = f"{tag}-{i}" if i % 2 else ""
            out.write(f"{email},Pat{i},Bench,{when},{zone},microneedling,{external}\n")
    return bad


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving this process's connections.

    Each connection taken from the pool records its backend's pid; `seconds()` sums their
    utime + stime from /proc, so what the server spent on this import is counted and other
    sessions' work on the shared server is not.
    """

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.tick = os.sysconf("SC_CLK_TCK")

    def watch(self, engine: Any) -> None:
        from sqlalchemy import event

        def checked_out(dbapi_connection: Any, *_: Any) -> None:
            self.pids.add(dbapi_connection.info.backend_pid)

        event.listen(engine, "checkout", checked_out)

    def seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # a closed connection: its CPU was counted while it was open
            total += int(fields[11]) + int(fields[12])
        return total / self.tick


BACKEND = BackendCpu()


def use_database(backend: str, database: str, workdir: Path) -> str:
    import sqlalchemy as sa

    if backend == "pg":
        admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {database}"))
        admin.dispose()
        url = f"{PG}/{database}"
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
    os.environ["DRIPCARE_DATABASE_URL"] = url
    os.environ["DRIPCARE_STATE_DIR"] = str(workdir / "state")
    from dripcare import db
    from dripcare.migrations import upgrade

    db.reset()
    upgrade()
    if backend == "pg":
        BACKEND.watch(db.get_engine())
    return url


def new_clinic(name: str) -> int:
    from dripcare.db import session_scope
    from dripcare.people.clinic_setup import create_clinic

    with session_scope() as session:
        clinic = create_clinic(
            session, name=name, sender=f"care@{name.lower()}.example", phone="1", timezone="UTC"
        )
        return clinic.id


def outbox_rows(clinic_id: int) -> int:
    from sqlalchemy import func, select

    from dripcare.db import session_scope
    from dripcare.models import Message

    with session_scope() as session:
        query = select(func.count()).where(Message.clinic_id == clinic_id)
        return int(session.scalar(query) or 0)


def run_cli(path: Path, clinic_id: int) -> dict[str, Any]:
    from click.testing import CliRunner

    from dripcare.cli import main

    result = CliRunner().invoke(
        main, ["import-csv", str(path), "--clinic", str(clinic_id), "--json"]
    )
    if result.exit_code not in (0, 1):
        raise SystemExit(f"import-csv failed ({result.exit_code}): {result.output}")
    return dict(json.loads(result.stdout))


def old_row_by_row(path: Path, clinic_id: int) -> dict[str, int]:
    """The import as it was before (csv_import.py at 6d0c5e1): enroll() and a savepoint a row."""
    import csv

    from dripcare.config import get_settings
    from dripcare.db import session_scope
    from dripcare.errors import UserError
    from dripcare.outbox.enrollment_input import EnrollRequest
    from dripcare.outbox.enrollments import enroll

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    counts = {"created": 0, "existing": 0, "rejected": 0}
    settings = get_settings()
    for start in range(0, len(rows), 200):
        with session_scope() as session:
            for row in rows[start : start + 200]:
                savepoint = session.begin_nested()
                try:
                    result = enroll(
                        session,
                        EnrollRequest(
                            clinic_id=clinic_id,
                            email=row["email"],
                            treated_at=row["treated_at"],
                            first_name=row["first_name"],
                            last_name=row["last_name"],
                            campaign=row["treatment"] or "microneedling",
                            timezone=row["timezone"] or None,
                            external_id=row["external_id"] or None,
                        ),
                        settings,
                    )
                    savepoint.commit()
                except UserError:
                    savepoint.rollback()
                    counts["rejected"] += 1
                    continue
                counts["created" if result.created else "existing"] += 1
    return counts


def _count(rejected: int | list[Any]) -> int:
    return rejected if isinstance(rejected, int) else len(rejected)


def timed(label: str, action: Callable[[], Any], clinic_id: int, before: int) -> dict[str, Any]:
    started, cpu, server = time.perf_counter(), time.process_time(), BACKEND.seconds()
    outcome = action()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    server = BACKEND.seconds() - server
    created = outcome["created"]
    rows = outbox_rows(clinic_id) - before
    rate = created / seconds if seconds else 0.0
    done = max(created + outcome["existing"], 1)
    print(
        f"  {label:<9} {created:>6} created, {outcome['existing']:>6} existing, "
        f"{_count(outcome['rejected']):>4} rejected "
        f"in {seconds:6.2f} s = {rate:8,.0f} patients/s, {rows / seconds:9,.0f} outbox rows/s"
        f" (CPU a row: this process {cpu * 1e6 / done:,.0f} us"
        f" + PostgreSQL {server * 1e6 / done:,.0f} us)"
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "server_cpu_seconds": server,
        "cpu_us_per_row": (cpu + server) * 1e6 / done,
        "created": created,
        "outbox_rows": rows,
        "patients_per_s": rate,
    }


def bench(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = use_database(backend, args.database, workdir)
    print(f"{backend}: {url}")
    main_csv, base_csv = workdir / "patients.csv", workdir / "baseline.csv"
    bad = write_csv(main_csv, args.patients, "p")
    write_csv(base_csv, args.baseline, "b", seed=15)
    clinic, other = new_clinic("Bench"), new_clinic("Baseline")
    figures: dict[str, Any] = {"bad_rows": bad}
    figures["import"] = timed("import", lambda: run_cli(main_csv, clinic), clinic, 0)
    after = outbox_rows(clinic)
    figures["again"] = timed("again", lambda: run_cli(main_csv, clinic), clinic, after)
    if figures["again"]["created"] or outbox_rows(clinic) != after:
        raise SystemExit("FAILED: the second import created rows")
    if args.baseline:
        figures["baseline"] = timed("baseline", lambda: old_row_by_row(base_csv, other), other, 0)
        ratio = figures["import"]["patients_per_s"] / figures["baseline"]["patients_per_s"]
        figures["ratio"] = ratio
        print(f"  ratio import/baseline: {ratio:.1f}")
    return figures


def spread(backend: str, runs: list[dict[str, Any]]) -> None:
    """Min / median / max over the runs of the import's rate, CPU a row and ratio."""

    def line(name: str, values: list[float], unit: str) -> str:
        values = sorted(values)
        middle = values[len(values) // 2]
        return f"{name} {values[0]:,.1f} / {middle:,.1f} / {values[-1]:,.1f} {unit}"

    imports = [r["import"] for r in runs]
    parts = [
        line("import", [i["patients_per_s"] for i in imports], "patients/s"),
        line("CPU", [i["cpu_us_per_row"] for i in imports], "us a row (process + server)"),
    ]
    if all("ratio" in r for r in runs):
        parts.append(line("ratio", [r["ratio"] for r in runs], "x baseline"))
    print(f"{backend}, {len(runs)} run(s), min / median / max: " + "; ".join(parts))


def main() -> None:
    args = parse_args()
    import dripcare

    print(f"code: {Path(dripcare.__file__).parent}; {os.cpu_count()} CPUs, load {os.getloadavg()}")
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.runs):
        for backend in args.backend:
            with tempfile.TemporaryDirectory(prefix="dripcare-bench-csv-") as tmp:
                results.setdefault(backend, []).append(bench(backend, args, Path(tmp)))
    for backend, runs in results.items():
        spread(backend, runs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
