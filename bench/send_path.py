"""CPU per email of the send path alone: `delivery.send_batch` in this process, null transport.

    .venv/bin/python bench/send_path.py [--messages N] [--rounds R] [--profile FILE]
    .venv/bin/python bench/send_path.py --compare old=../old/src new=src --cycles 3
    .venv/bin/python bench/send_path.py --sink [--compare ...]  # a real smtp-sink instead

With --compare, each LABEL=SRC runs this script in a subprocess with PYTHONPATH=SRC (and the
interpreter of SRC/../.venv when there is one: an old tree's dependencies), one after
the other, --cycles times (old, new, old, new, ...), each code on its own database seeded once,
and the medians are printed side by side: an A/B on a shared machine, in the same run.

What bench/throughput.py's "worker CPU" measures, without Celery, Redis's queue, the SMTP
socket or the other processes on the machine: PostgreSQL (the claim is not timed; the
batch's own transactions are, on the client side), rendering, composing, the send-time
rules and the outcome writes. Each round puts every row back to `scheduled` and sends them
all again in batches of DRIPCARE_BATCH_SIZE (100), so rounds can alternate with another
code tree (`other/.venv/bin/python bench/send_path.py`, see bench/README.md) and be compared
in `time.process_time()` per email, which a busy machine disturbs far less than msg/s.
With --sink the batches go to Postfix's smtp-sink through `SMTPTransport` (the SMTP leg's
CPU included; the difference from a null-transport run is that leg's cost).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # the same seed as the end-to-end benchmark


class NullTransport:
    """Takes every message and sends nothing: the transport's cost stays out of the figure."""

    def __enter__(self) -> NullTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None:
        pass


def reset_rows() -> None:
    """Every row due again, as the seed left it (attempts and outcomes gone)."""
    from sqlalchemy import text

    from dripcare.db import session_scope

    with session_scope() as session:
        session.execute(text("DELETE FROM delivery_attempts"))
        session.execute(
            text(
                "UPDATE messages SET status = 'scheduled', attempts = 0, lease_token = NULL,"
                " lease_until = NULL, sent_at = NULL, campaign_version = NULL,"
                " status_reason = '', last_error = '', due_at = now() - interval '1 minute'"
            )
        )


def seeded_count() -> int | None:
    """How many messages the database already holds (None when it has no schema yet)."""
    import sqlalchemy as sa

    from dripcare.db import get_engine

    try:
        with get_engine().connect() as conn:
            return int(conn.scalar(sa.text("SELECT count(*) FROM messages")) or 0)
    except sa.exc.DBAPIError:
        return None


def compare(args: argparse.Namespace) -> int:
    """Alternate the code trees in subprocesses and print their medians side by side."""
    trees = [spec.split("=", 1) for spec in args.compare]
    figures: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in trees}
    for cycle in range(1, args.cycles + 1):
        for label, src in trees:
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                venv = Path(src).resolve().parent / ".venv/bin/python"  # the tree's own, if any
                command = [
                    str(venv if venv.exists() else sys.executable),
                    __file__,
                    f"--messages={args.messages}",
                    f"--rounds={args.rounds}",
                    f"--batch-size={args.batch_size}",
                    f"--clinics={args.clinics}",
                    f"--database={args.database}_{label}",
                    f"--pg={args.pg}",
                    f"--redis={args.redis}",
                    "--keep-seed",
                    f"--json={out.name}",
                    *([f"--smtp-port={args.smtp_port}"] if args.smtp_port else []),
                ]
                env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode:
                    print(done.stdout, done.stderr, file=sys.stderr)
                    return done.returncode
                result = json.loads(Path(out.name).read_text())
            figures[label].append((result["median_us"], result["emails_per_s"]))
            print(
                f"cycle {cycle} {label:>10}: {result['median_us']:.0f} us/email, "
                f"{result['emails_per_s']:.0f} emails/s  ({result['code']})",
                flush=True,
            )
    print(f"CPUs: {os.cpu_count()}, load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("label       median us/email of cycles (each cycle's median of rounds)   emails/s")
    for label, values in figures.items():
        cpu = [v[0] for v in values]
        rate = [v[1] for v in values]
        print(
            f"{label:>10}: {statistics.median(cpu):6.0f}  ({', '.join(f'{v:.0f}' for v in cpu)})"
            f"   {statistics.median(rate):6.0f}"
        )
    return 0


def one_round(batch_size: int, smtp_port: int | None) -> tuple[int, float, float]:
    """Send every due row; (emails sent, CPU seconds, wall seconds) inside send_batch."""
    from dripcare.config import get_settings
    from dripcare.db import session_scope
    from dripcare.outbox.dispatch import claim_due
    from dripcare.sending import delivery
    from dripcare.sending.transports import SMTPTransport, Transport

    settings = get_settings()
    transport: Transport = NullTransport()
    if smtp_port is not None:
        transport = SMTPTransport("127.0.0.1", smtp_port, timeout=30)
    sent, cpu, wall = 0, 0.0, 0.0
    while True:
        with session_scope() as session:
            claim = claim_due(session, limit=batch_size, lease=timedelta(minutes=10))
        if claim is None:
            return sent, cpu, wall
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        result = delivery.send_batch(
            session_scope, claim.token, claim.message_ids, transport, settings
        )
        cpu += time.process_time() - cpu_start
        wall += time.perf_counter() - wall_start
        sent += result.sent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=5000)
    p.add_argument("--rounds", "-r", type=int, default=3)
    p.add_argument("--batch-size", "-b", type=int, default=100)
    p.add_argument("--clinics", type=int, default=3)
    p.add_argument("--database", default="dripcare_bench_send_path")
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument("--profile", metavar="FILE", help="cProfile the last round to FILE")
    p.add_argument("--compare", nargs="+", metavar="LABEL=SRC", help="alternate code trees")
    p.add_argument("--cycles", type=int, default=3, help="with --compare: runs of each tree")
    p.add_argument("--keep-seed", action="store_true", help="reuse a database seeded with N")
    p.add_argument("--json", metavar="FILE", help="write the figures to FILE")
    p.add_argument("--sink", action="store_true", help="send to a Postfix smtp-sink")
    p.add_argument("--smtp-port", type=int, help="send to this SMTP server on 127.0.0.1")
    args = p.parse_args()
    if args.sink and not args.smtp_port:
        sink = throughput.Sink("send-path", Path(tempfile.mkdtemp(prefix="dripcare-sp-")), False)
        sink.start()
        args.smtp_port = sink.port
        try:
            return compare(args) if args.compare else measure(args)
        finally:
            sink.stop()
    return compare(args) if args.compare else measure(args)


def measure(args: argparse.Namespace) -> int:
    """Seed (or reuse) the database, then time --rounds rounds of sending every row."""
    os.environ.update(
        {
            "DRIPCARE_ENV": "development",
            "DRIPCARE_SECRET_KEY": "bench-secret-" + "x" * 40,
            "DRIPCARE_DATABASE_URL": f"{args.pg}/{args.database}",
            "DRIPCARE_BROKER_URL": args.redis,
            "DRIPCARE_SMTP_URL": "smtp://127.0.0.1:9",
            "DRIPCARE_BASE_URL": "https://care.example-clinic.com",
            "DRIPCARE_BATCH_SIZE": str(args.batch_size),
            "DRIPCARE_QUIET_HOURS": "00:00-00:00",
        }
    )
    code = throughput.describe_code()
    print(code)
    if args.keep_seed and seeded_count() == args.messages:
        messages = args.messages
    else:
        throughput.setup_database(args)
        seeded = throughput.seed(args.messages, args.clinics)
        messages = seeded.messages
        print(f"seeded {messages} messages ({seeded.clinics} clinics) in {seeded.seconds:.1f} s")
    per_email, rates = [], []
    for number in range(1, args.rounds + 1):
        reset_rows()
        if args.profile and number == args.rounds:
            import cProfile

            profiler = cProfile.Profile(time.process_time)  # CPU, not waits
            sent, cpu, wall = profiler.runcall(one_round, args.batch_size, args.smtp_port)
            profiler.dump_stats(args.profile)
        else:
            sent, cpu, wall = one_round(args.batch_size, args.smtp_port)
        if sent != messages:
            print(f"round {number}: only {sent} of {messages} sent", file=sys.stderr)
            return 1
        per_email.append(cpu / sent * 1e6)
        rates.append(sent / wall)
        print(
            f"round {number}: {sent} emails, CPU {cpu:.2f} s = {per_email[-1]:.0f} us/email "
            f"(wall {wall:.2f} s)"
        )
    median = statistics.median(per_email)
    print(f"median CPU per email: {median:.0f} us")
    if args.json:
        figures = {"code": code, "median_us": median, "emails_per_s": statistics.median(rates)}
        Path(args.json).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
