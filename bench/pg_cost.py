"""PostgreSQL's work per email in bench/throughput.py's pipeline, statement by statement.

    .venv/bin/python bench/pg_cost.py [--messages N] [--pg URL] [--redis URL]
    .venv/bin/python bench/pg_cost.py --compare old=../old/src new=src [--cycles 2]

msg/s and CPU seconds move with whatever else runs on the machine; what PostgreSQL is asked to
do does not. Each run seeds and sends N emails with throughput.py (`--skip-baseline --verify
count`), resets the counters after the workers are up and just before the first dispatch, and
reads them once every row is sent: per statement from pg_stat_statements (calls, rows, shared
blocks hit / dirtied / written, WAL records and bytes, execution time), the `messages` table's
updates and HOT updates, and the WAL written (LSN difference).

Use a PostgreSQL of your own: `shared_preload_libraries = pg_stat_statements` (the extension is
created in its `postgres` database), `track_io_timing = off`, and `full_page_writes = off` with
`checkpoint_timeout = 1h`: a checkpoint inside a run adds full-page images to its WAL bytes
(not to its WAL records). See bench/README.md, "Issue 11".
With --compare, each LABEL=SRC runs in a subprocess with PYTHONPATH=SRC and the interpreter of
SRC/../.venv when there is one (as bench/send_path.py), using this tree's throughput.py, so
every tree seeds the same rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# throughput.py's own progress and check queries (lower case there): not the send path's work
OWN_QUERIES = (
    "select ",
    "create table if not exists bench_commit_probe",
    "SELECT pg_stat",
    "SELECT n_tup_upd",
)
STATEMENT_COLUMNS = (
    "calls",
    "rows",
    "shared_blks_hit",
    "shared_blks_dirtied",
    "shared_blks_written",
    "wal_records",
    "wal_bytes",
    "total_exec_time",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=5000)
    p.add_argument("--batch-size", "-b", type=int, default=100)
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:55441")
    p.add_argument("--redis", default="redis://127.0.0.1:56391/14")
    p.add_argument("--database", default="dripcare_pgcost")
    p.add_argument("--compare", nargs="+", metavar="LABEL=SRC", help="code trees to compare")
    p.add_argument("--cycles", type=int, default=1, help="with --compare: runs of each tree")
    p.add_argument("--top", type=int, default=15, help="statements shown, by WAL bytes")
    p.add_argument("--json", metavar="FILE", help="write every run's figures as JSON")
    p.add_argument("--one", metavar="FILE", help=argparse.SUPPRESS)  # a child: figures to FILE
    return p.parse_args(argv)


# ---- one run, in the code tree on PYTHONPATH


def _throughput() -> Any:
    spec = importlib.util.spec_from_file_location("throughput", HERE / "throughput.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["throughput"] = module
    spec.loader.exec_module(module)
    return module


def _admin(args: argparse.Namespace) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")


def _reset(args: argparse.Namespace) -> int:
    """Zero the counters; returns the WAL position to measure from."""
    from sqlalchemy import text

    from dripcare.db import get_engine

    with _admin(args).connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        conn.execute(text("SELECT pg_stat_statements_reset()"))
        conn.execute(text("SELECT pg_stat_reset_shared('wal')"))
        lsn = conn.scalar(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
    with get_engine().connect() as conn:
        conn.execute(text("SELECT pg_stat_reset()"))
        conn.commit()
    return int(lsn)


def _read(args: argparse.Namespace, lsn: int) -> dict[str, Any]:
    from sqlalchemy import text

    from dripcare.db import get_engine

    time.sleep(11)  # backends report table and WAL counters when idle, at most 10 s late
    with get_engine().connect() as conn:
        table = conn.execute(
            text(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                " WHERE relname = 'messages'"
            )
        ).one()
    cols = ", ".join(f"sum({c})" for c in STATEMENT_COLUMNS)
    with _admin(args).connect() as conn:
        wal = conn.scalar(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")) - lsn
        wal_records = conn.scalar(text("SELECT wal_records FROM pg_stat_wal"))
        rows = conn.execute(
            text(
                f"SELECT query, {cols} FROM pg_stat_statements s"
                " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = :db GROUP BY query"
            ),
            {"db": args.database},
        ).all()
    statements: dict[str, dict[str, float]] = {}
    for query, *values in rows:
        key = _shape(query)
        if key.startswith(OWN_QUERIES):
            continue
        into = statements.setdefault(key, dict.fromkeys(STATEMENT_COLUMNS, 0.0))
        for name, value in zip(STATEMENT_COLUMNS, values, strict=True):
            into[name] += float(value or 0)
    return {
        "messages": args.messages,
        "batches": -(-args.messages // args.batch_size),
        "wal_bytes": int(wal),
        "wal_records": int(wal_records),
        "n_tup_upd": int(table.n_tup_upd),
        "n_tup_hot_upd": int(table.n_tup_hot_upd),
        "statements": statements,
    }


def _shape(query: str) -> str:
    """One key for a statement whatever the length of its IN list or its spacing."""
    query = re.sub(r"\s+", " ", query).strip()
    return re.sub(r"IN \(\$\d+(?:::\w+)?(?:, ?\$\d+(?:::\w+)?)*\)", "IN ($…)", query)


def run_one(args: argparse.Namespace) -> int:
    """Run throughput.py here, with the counters reset just before the timed pipeline."""
    tp = _throughput()
    marks: dict[str, int] = {}
    latency = tp.commit_latency

    def latency_then_reset(*a: Any, **kw: Any) -> float:
        value = latency(*a, **kw)  # its probe table stays out of the figures
        marks["lsn"] = _reset(args)
        return value

    tp.commit_latency = latency_then_reset
    code = tp.main(
        [
            f"--messages={args.messages}",
            f"--batch-size={args.batch_size}",
            "--skip-baseline",
            "--verify=count",
            "--wait-quiet=0",
            f"--pg={args.pg}",
            f"--redis={args.redis}",
            f"--database={args.database}",
        ]
    )
    if code:
        return code
    Path(args.one).write_text(json.dumps(_read(args, marks["lsn"])))
    return 0


# ---- comparing trees


def run_tree(args: argparse.Namespace, label: str, src: str) -> dict[str, Any]:
    venv_python = Path(src).resolve().parent / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [python, str(Path(__file__).resolve()), "--one", out.name]
        cmd += [f"--messages={args.messages}", f"--batch-size={args.batch_size}"]
        cmd += [f"--pg={args.pg}", f"--redis={args.redis}", f"--database={args.database}"]
        print(f"== {label} ({src})", flush=True)
        subprocess.run(cmd, env=env, check=True)
        return {"label": label, **json.loads(Path(out.name).read_text())}


def per_email(run: dict[str, Any]) -> dict[str, float]:
    n = run["messages"]
    stats = run["statements"].values()
    calls = sum(s["calls"] for s in stats)
    upd = run["n_tup_upd"]
    return {
        "WAL bytes / email": run["wal_bytes"] / n,
        "WAL records / email": run["wal_records"] / n,
        "messages updates / email": upd / n,
        "HOT share of updates": run["n_tup_hot_upd"] / upd if upd else 0.0,
        "statements / batch": calls / run["batches"],
        "blocks dirtied / email": sum(s["shared_blks_dirtied"] for s in stats) / n,
        "blocks hit / email": sum(s["shared_blks_hit"] for s in stats) / n,
        "exec time us / email": 1000 * sum(s["total_exec_time"] for s in stats) / n,
    }


def report(runs: list[dict[str, Any]], top: int) -> None:
    labels = list(dict.fromkeys(r["label"] for r in runs))
    summary = {label: [per_email(r) for r in runs if r["label"] == label] for label in labels}
    print("\nper email (one figure per run)")
    for name in per_email(runs[0]):
        cells = [", ".join(f"{s[name]:,.2f}" for s in summary[label]) for label in labels]
        print(
            f"  {name:<26}"
            + "".join(f"{label}: {c:<28}" for label, c in zip(labels, cells, strict=True))
        )
    last = {r["label"]: r for r in runs}
    keys = set().union(*(r["statements"] for r in last.values()))
    wal = {
        k: max(r["statements"].get(k, {}).get("wal_bytes", 0) for r in last.values()) for k in keys
    }
    print(f"\nstatements by WAL bytes (last run of each), per email: {', '.join(labels)}")
    for key in sorted(keys, key=wal.__getitem__, reverse=True)[:top]:
        print(f"  {key[:150]}")
        for label, run in last.items():
            s = run["statements"].get(key)
            if s is None:
                print(f"    {label:<8} -")
                continue
            n = run["messages"]
            print(
                f"    {label:<8} calls {s['calls']:>6.0f} rows {s['rows']:>6.0f} "
                f"hit {s['shared_blks_hit'] / n:6.1f} dirtied {s['shared_blks_dirtied'] / n:5.2f} "
                f"written {s['shared_blks_written'] / n:5.2f} WAL rec {s['wal_records'] / n:5.2f} "
                f"WAL B {s['wal_bytes'] / n:7.0f} exec {1000 * s['total_exec_time'] / n:6.1f} us"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        return run_one(args)
    trees = [spec.split("=", 1) for spec in (args.compare or [f"this={HERE.parent / 'src'}"])]
    runs = [run_tree(args, label, src) for _ in range(args.cycles) for label, src in trees]
    report(runs, args.top)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
