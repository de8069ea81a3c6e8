"""CPU per email and round trips of the SMTP leg alone: `SMTPTransport.send` to Postfix's smtp-sink.

    .venv/bin/python bench/smtp_leg.py [--messages N] [--rounds R] [--profile FILE]
    .venv/bin/python bench/smtp_leg.py --compare main=../main/src new=src --cycles 5

The messages are composed first (untimed) with `composing.compose`, 23 KB each as the default
emails are (a 20 KB HTML part and a 2.5 KB text part, quoted-printable, lines starting with a
dot included); then each round sends them all on one connection, as a batch does, and prints
this process's CPU (`time.process_time`) per email, msg/s, and the writes per email (each write
waits for the server's replies: the round trips). With --compare, each LABEL=SRC runs this
script in a subprocess with PYTHONPATH=SRC (the sending code of that tree), alternated
--cycles times against the same sink, and the medians are printed side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import Sink  # the same smtp-sink as the end-to-end benchmark


def messages(count: int) -> list[tuple[str, bytes, str]]:
    """(recipient, bytes, Message-ID) of `count` emails shaped like the default ones."""
    from dripcare.sending.composing import Envelope, compose

    html = "".join(
        f'<tr><td style="padding:0 24px;font-family:Arial">Step {n}: keep the area clean,'
        f' avoid make-up for 24 hours. <a href="https://care.example/c/{n}">Check in</a>'
        "</td></tr>\n"
        for n in range(110)
    )
    text = "".join(f"Step {n}: keep the area clean.\n.{n} a line with a dot\n" for n in range(45))
    out = []
    for n in range(count):
        message_id = f"<{n}.bench@care.example>"
        envelope = Envelope(
            from_name="Riverside Skin Clinic",
            from_addr="care@riverside.example",
            to_addr=f"patient{n}@example.com",
            subject="Your aftercare: day 1",
            message_id=message_id,
            date=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            list_unsubscribe=(f"https://care.example/u/{n}",),
        )
        body = compose(envelope, f"Dear patient {n},\n{text}", f"<p>Dear {n}</p>{html}")
        out.append((envelope.to_addr, body, message_id))
    return out


def one_round(port: int, batch: list[tuple[str, bytes, str]]) -> tuple[float, float, int]:
    """Send the batch on one connection: (CPU seconds, wall seconds, writes)."""
    from dripcare.sending.transports import SMTPTransport

    writes = 0
    original = smtplib.SMTP.send

    def counted(self: smtplib.SMTP, s: bytes | str) -> None:
        nonlocal writes
        writes += 1
        original(self, s)

    smtplib.SMTP.send = counted  # type: ignore[method-assign]
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        with SMTPTransport("127.0.0.1", port, timeout=30) as transport:
            for to, data, message_id in batch:
                transport.send("care@riverside.example", to, data, message_id)
        return time.process_time() - cpu, time.perf_counter() - wall, writes
    finally:
        smtplib.SMTP.send = original  # type: ignore[method-assign]


def measure(args: argparse.Namespace, port: int) -> dict[str, float]:
    import dripcare

    print(f"code: {Path(dripcare.__file__).resolve().parent}")
    batch = messages(args.messages)
    size = statistics.mean(len(data) for _, data, _ in batch)
    print(f"{len(batch)} messages of {size / 1024:.1f} KB")
    per_email, rates, writes = [], [], 0
    for number in range(1, args.rounds + 1):
        if args.profile and number == args.rounds:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            cpu, wall, writes = profiler.runcall(one_round, port, batch)
            profiler.dump_stats(args.profile)
        else:
            cpu, wall, writes = one_round(port, batch)
        per_email.append(cpu / len(batch) * 1e6)
        rates.append(len(batch) / wall)
        print(
            f"round {number}: {per_email[-1]:.0f} us CPU/email, {rates[-1]:.0f} msg/s, "
            f"{writes / len(batch):.2f} writes/email"
        )
    return {
        "median_us": statistics.median(per_email),
        "msg_s": statistics.median(rates),
        "writes": writes / len(batch),
    }


def compare(args: argparse.Namespace, port: int) -> None:
    trees = [spec.split("=", 1) for spec in args.compare]
    figures: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for cycle in range(1, args.cycles + 1):
        for label, src in trees:
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                command = [
                    sys.executable,
                    __file__,
                    f"--messages={args.messages}",
                    f"--rounds={args.rounds}",
                    f"--port={port}",
                    f"--json={out.name}",
                ]
                env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
                subprocess.run(command, env=env, check=True, capture_output=True)
                result = json.loads(Path(out.name).read_text())
            figures[label].append(result)
            print(
                f"cycle {cycle} {label:>8}: {result['median_us']:.0f} us CPU/email, "
                f"{result['msg_s']:.0f} msg/s, {result['writes']:.2f} writes/email",
                flush=True,
            )
    print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())}, CPUs: {os.cpu_count()}")
    base = statistics.median(r["median_us"] for r in figures[trees[0][0]])
    for label, results in figures.items():
        cpu = statistics.median(r["median_us"] for r in results)
        rate = statistics.median(r["msg_s"] for r in results)
        print(
            f"{label:>8}: median {cpu:.0f} us CPU/email ({cpu / base:.2f}x {trees[0][0]}),"
            f" {rate:.0f} msg/s, {results[-1]['writes']:.2f} writes/email"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=2000)
    p.add_argument("--rounds", "-r", type=int, default=3)
    p.add_argument("--compare", nargs="+", metavar="LABEL=SRC", help="alternate code trees")
    p.add_argument("--cycles", type=int, default=3, help="with --compare: runs of each tree")
    p.add_argument("--port", type=int, help="an SMTP server already listening on 127.0.0.1")
    p.add_argument("--profile", metavar="FILE", help="cProfile the last round to FILE")
    p.add_argument("--json", metavar="FILE", help="write the figures to FILE")
    args = p.parse_args()
    print(f"CPUs: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    sink = None
    if args.port is None:
        sink = Sink("smtp-leg", Path(tempfile.mkdtemp(prefix="dripcare-smtp-leg-")), dump=False)
        sink.start()
    port = args.port or (sink.port if sink else 0)
    try:
        if args.compare:
            compare(args, port)
            return 0
        figures = measure(args, port)
        print(f"median: {figures['median_us']:.0f} us CPU/email, {figures['msg_s']:.0f} msg/s")
        if args.json:
            Path(args.json).write_text(json.dumps(figures))
        return 0
    finally:
        if sink is not None:
            sink.stop()


if __name__ == "__main__":
    sys.exit(main())
