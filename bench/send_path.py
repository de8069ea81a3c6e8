"""CPU per email of the send path alone: `delivery.send_batch` in this process, null transport.

    .venv/bin/python bench/send_path.py [--messages N] [--rounds R] [--profile FILE]

What bench/throughput.py's "worker CPU" measures, without Celery, Redis's queue, the SMTP
socket or the other processes on the machine: PostgreSQL (the claim is not timed; the
batch's own transactions are, on the client side), rendering, composing, the send-time
rules and the outcome writes. Each round puts every row back to `scheduled` and sends them
all again in batches of DRIPCARE_BATCH_SIZE (100), so rounds can alternate with another
code tree (`other/.venv/bin/python bench/send_path.py`, see bench/README.md) and be compared
in `time.process_time()` per email, which a busy machine disturbs far less than msg/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
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


def one_round(batch_size: int) -> tuple[int, float, float]:
    """Send every due row; (emails sent, CPU seconds, wall seconds) inside send_batch."""
    from dripcare import delivery
    from dripcare.config import get_settings
    from dripcare.db import session_scope
    from dripcare.dispatch import claim_due

    settings = get_settings()
    transport = NullTransport()
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
    args = p.parse_args()
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
    print(throughput.describe_code())
    throughput.setup_database(args)
    seeded = throughput.seed(args.messages, args.clinics)
    print(f"seeded {seeded.messages} messages ({seeded.clinics} clinics) in {seeded.seconds:.1f} s")
    per_email = []
    for number in range(1, args.rounds + 1):
        reset_rows()
        if args.profile and number == args.rounds:
            import cProfile

            profiler = cProfile.Profile()
            sent, cpu, wall = profiler.runcall(one_round, args.batch_size)
            profiler.dump_stats(args.profile)
        else:
            sent, cpu, wall = one_round(args.batch_size)
        if sent != seeded.messages:
            print(f"round {number}: only {sent} of {seeded.messages} sent", file=sys.stderr)
            return 1
        per_email.append(cpu / sent * 1e6)
        print(
            f"round {number}: {sent} emails, CPU {cpu:.2f} s = {per_email[-1]:.0f} us/email "
            f"(wall {wall:.2f} s)"
        )
    print(f"median CPU per email: {statistics.median(per_email):.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
