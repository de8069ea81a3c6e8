"""How fast DSN and ARF reports are read, and what one `dripcare inbound` process costs.

    .venv/bin/python bench/delivery_reports.py [--rounds 2000]

Parses each sample of tests/samples/ `--rounds` times with `delivery_reports.parse` (no
database) and prints reports per second; then pipes one DSN to `dripcare inbound` five times
(an empty SQLite database in a temporary state dir: the token names no message) and prints the
median wall time of a process, which is what the mail server pays per report.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.report_samples import SAMPLES, report_sample  # noqa: E402

from dripcare.sending.delivery_reports import parse  # noqa: E402

VERP = "bounces+m7-abcdefghijklmnop@bounce.riverside.example"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=2000)
    rounds = p.parse_args().rounds
    for path in sorted(SAMPLES.glob("*.eml")):
        raw = report_sample(path.name, VERP, "<a1@riverside.example>", "pat@example.com")
        start = time.perf_counter()
        for _ in range(rounds):
            parse(raw)
        seconds = time.perf_counter() - start
        print(f"{path.name:32} {len(raw):6} bytes  {rounds / seconds:8.0f} parsed/s")
    raw = report_sample("dsn_postfix_user_unknown.eml", VERP, "<a1@x>", "pat@example.com")
    with tempfile.TemporaryDirectory() as state:
        env = os.environ | {"DRIPCARE_STATE_DIR": state}
        subprocess.run([sys.executable, "-m", "dripcare.cli", "db", "upgrade"], env=env, check=True)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "dripcare.cli", "inbound"],
                input=raw,
                env=env,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
    print(f"dripcare inbound, one DSN per process: median {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
