"""Scale-out: 1, then 2 (then 3) `dripcare worker` processes as if on separate hosts, one run.

    .venv/bin/python bench/scale_out.py                        # 10,000 emails; 1 then 2 workers
    .venv/bin/python bench/scale_out.py -n 5000 --workers 1 2 3
    .venv/bin/python bench/scale_out.py --restricted           # each worker -c 1, its own core
    .venv/bin/python bench/scale_out.py --kill                 # 2 workers, one SIGKILLed mid-run
    .venv/bin/python bench/scale_out.py -- --result-flush 100  # after --: throughput.py options

Each step is one bench/throughput.py pipeline (imported, not copied): the same N, its own
database (`<--database>_<k>w`), the same Redis db (flushed per step), its own smtp-sink; each
worker is its own process group with its own pool, node name (bench<i>@host<i>) and state
directory, so nothing but PostgreSQL, Redis and the sink is shared, as on separate hosts.

Printed per step: msg/s, the ratio to 1 worker measured in the same run, CPU per email of the
workers (and each worker's share), of PostgreSQL and of the sink, the peak number of PostgreSQL
backends, and what saturated: each component's share of the machine's cores.

On a machine with as many cores as workers, more workers cannot add cores: the figures then
show where the cores went, not a scale-out. `--restricted` holds every worker to one pool
process (`-c 1`) pinned to one core (taskset), so a worker is a host's worth of capacity that
is smaller than the machine and the adding-up shows while there is headroom.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import throughput  # noqa: E402

SHARED = ("postgresql", "smtp-sink", "redis", "kernel threads", "bench process")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=10_000, help="emails per step (10000)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="steps (1 2)")
    p.add_argument(
        "--restricted", action="store_true", help="each worker -c 1 and pinned to one core"
    )
    p.add_argument(
        "--kill",
        action="store_true",
        help="one step of 2 workers; the second is SIGKILLed at half way (lease 10 s)",
    )
    p.add_argument("--verify", choices=["ids", "count"], default="ids")
    p.add_argument("--database", default="dripcare_bench_scale_out")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    argv = sys.argv[1:] if argv is None else argv
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    mine = argv[: argv.index("--")] if "--" in argv else argv
    return p.parse_args(mine), rest


class Backends:
    """Peak count of PostgreSQL backends on the step's database, sampled every 0.2 s."""

    def __init__(self, database: str) -> None:
        self.database, self.peak = database, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        sql = sa.text("select count(*) from pg_stat_activity where datname = :d")
        with engine.connect() as conn:
            while not self.stop.is_set():
                self.peak = max(self.peak, conn.execute(sql, {"d": self.database}).scalar_one())
                conn.commit()
                self.stop.wait(0.2)
        engine.dispose()

    def __enter__(self) -> Backends:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def step_args(args: argparse.Namespace, k: int, out: Path, rest: list[str]) -> list[str]:
    """throughput.py's options for one step of k workers."""
    argv = ["-n", str(args.messages), "-k", str(k), "--skip-baseline", "--verify", args.verify]
    argv += ["--database", f"{args.database}_{k}w", "--redis", args.redis, "--json", str(out)]
    if args.restricted:
        argv += ["--concurrency", "1", "--pin"]
    if args.kill:
        argv += ["--kill-worker-at", "0.5", "--set", "DRIPCARE_LEASE_SECONDS=10"]
    return argv + rest


def run_step(args: argparse.Namespace, k: int, rest: list[str]) -> dict | None:
    print(f"\n==== {k} worker(s) ====", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        with Backends(f"{args.database}_{k}w") as backends:
            status = throughput.main(step_args(args, k, Path(out.name), rest))
        figures = json.loads(Path(out.name).read_text() or "{}")
    pipeline = figures.get("pipeline")
    if not pipeline:
        return None
    pipeline["status"], pipeline["backends"], pipeline["workers"] = status, backends.peak, k
    return pipeline


def summary(steps: list[dict]) -> None:
    """One line per step, then what saturated in each."""
    cores = os.cpu_count() or 1
    first = steps[0]["rate"]
    print(f"\nscale-out ({cores} cores; CPU in microseconds per email; share = of {cores} cores):")
    for s in steps:
        n, secs, cpu = s["messages"], s["seconds"], s["cpu"]
        per = {k: 1e6 * v / n for k, v in cpu.items()}
        shares = {k: v / (secs * cores) for k, v in cpu.items()}
        each = ", ".join(f"{w} {1e6 * v / n:.0f}" for w, v in sorted(s["cpu_by_worker"].items()))
        print(
            f"  {s['workers']} worker(s): {s['rate']:.0f} msg/s (x{s['rate'] / first:.2f} of 1 "
            f"worker); workers {per.get('worker', 0):.0f} us/email ({each}), PostgreSQL "
            f"{per.get('postgresql', 0):.0f}, sink {per.get('smtp-sink', 0):.0f}, redis "
            f"{per.get('redis', 0):.0f}; peak PostgreSQL backends {s['backends']}"
        )
        busy = sum(shares.values())
        top = ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items() if v >= 0.01)
        print(f"    share of the machine: {top} (total {100 * busy:.0f}%)")
        print(f"    limit: {limit(shares, s, cores)}")


def limit(shares: dict[str, float], step: dict, cores: int) -> str:
    """Which component the step ran out of: the machine, a worker's core, PostgreSQL, sink."""
    busy = sum(shares.values())
    others = sum(v for k, v in shares.items() if k.startswith("other:"))
    shared = max(SHARED, key=lambda k: shares.get(k, 0.0))
    if busy >= 0.85:
        return (
            f"the machine ({100 * busy:.0f}% of {cores} cores busy; others "
            f"{100 * others:.0f}%): more workers cannot add cores here"
        )
    per_worker = {w: v / step["seconds"] for w, v in step["cpu_by_worker"].items()}
    if per_worker and max(per_worker.values()) >= 0.85:
        return "each worker's core (a worker is CPU-bound: adding a host adds its rate)"
    if shares.get(shared, 0.0) * cores >= 0.85:
        return f"{shared}: one core's worth"
    return "none of the CPUs: waits (commit latency, round trips)"


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    counts = [2] if args.kill else args.workers
    steps, status = [], 0
    for k in counts:
        pipeline = run_step(args, k, rest)
        if pipeline is None:
            return 1
        status = status or pipeline["status"]
        steps.append(pipeline)
    summary(steps)
    return status


if __name__ == "__main__":
    sys.exit(main())
