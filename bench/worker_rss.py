"""Worker memory over a long run: every `dripcare worker` process's RSS while it sends N emails.

    .venv/bin/python bench/worker_rss.py                       # 100,000 emails, a sample every 5 s
    .venv/bin/python bench/worker_rss.py -n 20000 --every 2
    .venv/bin/python bench/worker_rss.py -- --concurrency 4    # after --: throughput.py's options

bench/throughput.py does the work (its seed, its pipeline, its checks; the baseline is skipped
and the sink only counts); this script samples /proc/PID/status VmRSS of every process whose
command line is a dripcare worker (the Celery main process and its pool children) every
--every seconds, and prints each one's first, peak and last sample, and the growth over the
second half of its life (first-half growth is the caches filling: templates, renders, the
quoted-printable chunks). Aim: < 150 MB per process and no growth in the second half.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import throughput  # noqa: E402

AIM_MB = 150.0
GROWTH_MB = 5.0  # more than this over the second half counts as growth


@dataclass
class Samples:
    role: str
    values: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=100_000, help="emails (100000)")
    p.add_argument("--every", type=float, default=5.0, help="seconds between samples (5)")
    p.add_argument("--database", default="dripcare_bench_rss")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    argv = sys.argv[1:] if argv is None else argv
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    mine = argv[: argv.index("--")] if "--" in argv else argv
    return p.parse_args(mine), rest


def workers() -> dict[int, str]:
    """pid -> "main" or "pool" for every dripcare worker process started by this one."""
    found = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or not is_worker(int(entry.name)):
            continue
        if not ancestor_is(int(entry.name), me):
            continue  # another engineer's worker
        found[int(entry.name)] = "pool" if is_worker(parent_of(int(entry.name))) else "main"
    return found


def is_worker(pid: int) -> bool:
    """`.venv/bin/dripcare worker ...` (a pool child keeps its parent's command line)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"worker" in argv and any(a.endswith(b"/dripcare") for a in argv[:2])


def parent_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def ancestor_is(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = parent_of(pid)
    return False


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sample(every: float, stop: threading.Event, out: dict[int, Samples]) -> None:
    started = time.monotonic()
    while not stop.is_set():
        for pid, role in workers().items():
            mb = rss_mb(pid)
            if mb is not None:
                out.setdefault(pid, Samples(role)).values.append((time.monotonic() - started, mb))
        stop.wait(every)


def report(out: dict[int, Samples]) -> bool:
    """One line per process; True when every process met the aim."""
    ok = True
    print(f"worker RSS (MB; cores={os.cpu_count()}; aim < {AIM_MB:.0f} MB and no growth):")
    for pid, s in sorted(out.items(), key=lambda kv: (kv[1].role, kv[0])):
        if len(s.values) < 2:
            continue
        mbs = [mb for _, mb in s.values]
        half = mbs[len(mbs) // 2 :]
        growth = half[-1] - half[0]
        span = s.values[-1][0] - s.values[0][0]
        good = max(mbs) < AIM_MB and growth <= GROWTH_MB
        ok = ok and good
        print(
            f"  pid {pid} ({s.role}): start {mbs[0]:.1f}, peak {max(mbs):.1f}, end {mbs[-1]:.1f}; "
            f"second half {growth:+.1f} over {len(half)} samples ({span:.0f} s sampled) "
            f"{'ok' if good else 'MISSED'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    stop = threading.Event()
    out: dict[int, Samples] = {}
    sampler = threading.Thread(target=sample, args=(args.every, stop, out), daemon=True)
    sampler.start()
    try:
        status = throughput.main(
            [
                "--messages",
                str(args.messages),
                "--skip-baseline",
                "--verify",
                "count",
                "--database",
                args.database,
                "--redis",
                args.redis,
                "--timeout",
                "7200",
                *rest,
            ]
        )
    finally:
        stop.set()
        sampler.join()
    ok = report(out)
    return status or (0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
