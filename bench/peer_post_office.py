"""django-post_office 3.12 against the same SMTP sink and emails as bench/throughput.py.

    .venv/bin/python bench/peer_post_office.py                      # 20,000 emails, the peer alone
    .venv/bin/python bench/peer_post_office.py --with-dripcare      # and throughput.py: the ratio
    .venv/bin/python bench/peer_post_office.py -n 5000 --with-dripcare --rounds 3 --verify count

The peer lives under var/bench/post_office/ and is built by this script, nothing of it is
committed: its own virtualenv (Django and django-post_office from PyPI, installed once), a
minimal Django project written here, and its own PostgreSQL database (dropped and migrated on
every run). The emails are dripcare's: every active step of the shipped microneedling campaign
(the one throughput.py seeds) rendered with sample data, N of them queued round-robin, so the
peer sends the same subjects and bodies as dripcare does; both wire sizes are printed.

Timed: `manage.py send_queued_mail --processes=2` (the peer's defaults otherwise: batches of
100, Django's SMTP backend, one log row per email), from start until it exits, then checked:
every email `sent`, the sink counted exactly N. With --with-dripcare, throughput.py runs in
the same run with the same N, the same kind of sink and the same --verify, and the ratio of
dripcare's pipeline to the peer is printed; --rounds alternates them to show the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import throughput  # noqa: E402  (the sink, CPU accounting and quiet-machine wait are shared)

HOME = ROOT / "var" / "bench" / "post_office"
REQUIREMENTS = ["django-post_office==3.12.*", "Django>=4.2,<6", "psycopg[binary]>=3.1"]
CAMPAIGN = "microneedling"

SETTINGS = """\
import os

SECRET_KEY = "peer-bench-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["post_office"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PEER_DATABASE"],
        "USER": os.environ.get("PEER_PGUSER", "postgres"),
        "HOST": os.environ.get("PEER_PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PEER_PGPORT", "5432"),
    }
}
EMAIL_BACKEND = "post_office.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("PEER_SMTP_PORT", "25"))
POST_OFFICE = {"BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
"""

MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

# Queues N emails the way `mail.send` builds them (its own Message-ID, status queued), in
# bulk: queueing is not what is timed. Prints the mean wire size of what Django will send.
QUEUE = """\
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
import django

django.setup()
from post_office import mail
from post_office.models import STATUS, Email

n = int(sys.argv[1])
steps = json.load(open(sys.argv[2]))
senders = json.load(open(sys.argv[3]))
batch = []
for i in range(n):
    step = steps[i % len(steps)]
    email = mail.create(
        sender=senders[i % len(senders)],
        recipients=[f"patient.{i}@example.net"],
        subject=step["subject"],
        message=step["text"],
        html_message=step["html"],
        commit=False,
    )
    email.status = STATUS.queued
    batch.append(email)
    if len(batch) == 2000:
        Email.objects.bulk_create(batch)
        batch = []
Email.objects.bulk_create(batch)
sizes = [len(e.email_message().message().as_bytes()) for e in Email.objects.all()[: len(steps)]]
print(json.dumps({"queued": Email.objects.filter(status=STATUS.queued).count(),
                  "bytes": sum(sizes) / len(sizes)}))
"""

COUNT = """\
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
import django

django.setup()
from django.db.models import Count
from post_office.models import Email

print(json.dumps({str(k): v for k, v in Email.objects.values_list("status").annotate(Count("id"))}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=20_000, help="emails (20000)")
    p.add_argument("--processes", type=int, default=2, help="send_queued_mail --processes (2)")
    p.add_argument("--with-dripcare", action="store_true", help="also run throughput.py: ratio")
    p.add_argument("--rounds", type=int, default=1, help="alternate peer/dripcare this many times")
    p.add_argument("--verify", choices=["ids", "count"], default="ids", help="as throughput.py")
    p.add_argument("--wait-quiet", type=float, default=30, help="as throughput.py (30)")
    p.add_argument("--database", default="dripcare_bench_post_office")
    p.add_argument("--dripcare-database", default="dripcare_bench_peer")
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="for throughput.py")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--throughput-arg", action="append", default=[], help="passed to throughput.py")
    return p.parse_args(argv)


def python() -> Path:
    return HOME / "venv" / "bin" / "python"


def ensure_peer() -> str:
    """The peer's virtualenv (installed once) and project; returns its versions."""
    marker = HOME / "venv" / ".installed"
    if not marker.exists():
        print(f"installing the peer into {HOME / 'venv'} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(HOME / "venv")], check=True)
        pip = [str(python()), "-m", "pip", "install", "--quiet", *REQUIREMENTS]
        subprocess.run(pip, check=True)
        marker.touch()
    project = HOME / "project"
    project.mkdir(parents=True, exist_ok=True)
    for name, text in [("settings.py", SETTINGS), ("manage.py", MANAGE)]:
        (project / name).write_text(text)
    (project / "queue_emails.py").write_text(QUEUE)
    (project / "count_emails.py").write_text(COUNT)
    out = subprocess.run(
        [
            str(python()),
            "-c",
            "import django, importlib.metadata as m; "
            "print(django.get_version(), m.version('django-post_office'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return f"Django {out[0]}, django-post_office {out[1]}"


def dripcare_emails(workdir: Path) -> tuple[Path, Path, float]:
    """Every active step of the shipped campaign rendered with sample data (as JSON for the
    queueing script), the clinics' senders, and dripcare's mean wire size for them."""
    os.environ.setdefault("DRIPCARE_ENV", "development")
    os.environ.setdefault("DRIPCARE_SECRET_KEY", "bench-secret-" + "x" * 40)
    from dripcare.config import get_settings
    from dripcare.content.campaigns import load_campaign_dir
    from dripcare.content.previews import render_step
    from dripcare.sending.composing import Envelope, compose

    spec = load_campaign_dir(get_settings().templates_dir / CAMPAIGN)
    steps, sizes = [], []
    for step in spec.steps:
        if not getattr(step, "active", True):
            continue
        r = render_step(spec, step.key, None)
        steps.append({"subject": r.subject, "html": r.html, "text": r.text})
        env = Envelope(
            "Riverside Skin Clinic",
            "care@riverside-skin.example.com",
            "patient.1@example.net",
            r.subject,
            "<0123456789abcdef0123456789abcdef@riverside-skin.example.com>",
            datetime.now(UTC),
        )
        sizes.append(len(compose(env, r.text, r.html)))
    senders = [f"{name} <{addr}>" for name, addr, _, _ in throughput.CLINICS[:3]]
    (workdir / "steps.json").write_text(json.dumps(steps))
    (workdir / "senders.json").write_text(json.dumps(senders))
    return workdir / "steps.json", workdir / "senders.json", sum(sizes) / len(sizes)


def peer_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PEER_DATABASE": args.database,
        "PEER_SMTP_PORT": str(port),
        "PYTHONPATH": str(HOME / "project"),
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *argv: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(python()), *argv],
        cwd=HOME / "project",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise SystemExit(f"peer: {' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def reset_database(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{args.database}"'))
    admin.dispose()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_peer(args: argparse.Namespace, files: tuple[Path, Path], rundir: Path) -> dict:
    """Queue N emails, then time send_queued_mail until it exits; check sink and rows."""
    sink = throughput.Sink("peer", rundir, dump=args.verify == "ids")
    sink.start()
    env = peer_env(args, sink.port)
    try:
        reset_database(args)
        manage(env, "manage.py", "migrate", "--verbosity", "0")
        queued = json.loads(manage(env, "queue_emails.py", str(args.messages), *map(str, files)))
        throughput.wait_quiet(args.wait_quiet)
        cmd = [
            str(python()),
            "manage.py",
            "send_queued_mail",
            f"--processes={args.processes}",
            "--lockfile",
            str(rundir / "send_queued_mail"),
        ]
        log = rundir / "send_queued_mail.log"
        before, children = throughput.cpu_snapshot(), children_cpu()
        started = time.perf_counter()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=HOME / "project", env=env, stdout=out, stderr=subprocess.STDOUT
            )
            proc.wait(args.timeout)
        seconds = time.perf_counter() - started
        cpu = throughput.cpu_by_group(before, throughput.cpu_snapshot(), {})
        # Its pool processes live one batch each: their CPU is only seen once reaped.
        cpu = {"post_office": children_cpu() - children, **cpu}
        problems = []
        if proc.returncode:
            problems.append(f"send_queued_mail exited {proc.returncode}: see {log}")
        received = sink.wait_stable(args.messages)
        statuses = json.loads(manage(env, "count_emails.py"))
        if statuses != {"0": args.messages}:  # STATUS.sent == 0
            problems.append(f"peer rows by status (0 = sent): {statuses}")
        if received != args.messages:
            problems.append(f"peer: sink counted {received}, expected {args.messages}")
        ids = sink.message_ids()
        if ids is not None and len(set(ids)) != len(ids):
            problems.append(f"peer: {len(ids) - len(set(ids))} Message-IDs received twice")
        return {
            "seconds": seconds,
            "rate": args.messages / seconds,
            "cpu": cpu,
            "bytes": queued["bytes"],
            "problems": problems,
        }
    finally:
        sink.stop()


def run_dripcare(args: argparse.Namespace, rundir: Path, index: int) -> dict:
    """bench/throughput.py with the same N and --verify, its figures read from --json."""
    out = rundir / f"throughput-{index}.json"
    cmd = [
        sys.executable,
        str(BENCH / "throughput.py"),
        "--messages",
        str(args.messages),
        "--verify",
        args.verify,
        "--wait-quiet",
        str(args.wait_quiet),
        "--database",
        args.dripcare_database,
        "--redis",
        args.redis,
        "--json",
        str(out),
        *args.throughput_arg,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    for line in result.stdout.splitlines():
        print(f"  | {line}")
    if result.returncode or not out.exists():
        print(result.stderr[-3000:], file=sys.stderr)
        return {"problems": [f"throughput.py exited {result.returncode}"]}
    figures = json.loads(out.read_text())
    return {
        "rate": figures["pipeline"]["rate"],
        "cpu": figures["pipeline"]["cpu"].get("worker", 0.0),
        "problems": [],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    versions = ensure_peer()
    rundir = Path(tempfile.mkdtemp(prefix="dripcare-peer-"))
    steps, senders, dripcare_bytes = dripcare_emails(rundir)
    cores = os.cpu_count()
    print(
        f"peer: {versions}; {args.messages} emails, send_queued_mail "
        f"--processes={args.processes}; cores={cores}; verify={args.verify}"
    )
    problems: list[str] = []
    peers, ratios, cpu_ratios = [], [], []
    for index in range(args.rounds):
        peer = run_peer(args, (steps, senders), rundir)
        problems += peer["problems"]
        peers.append(peer["rate"])
        print(
            f"post_office: {args.messages} emails in {peer['seconds']:.1f} s = "
            f"{peer['rate']:.0f} msg/s ({peer['bytes'] / 1000:.1f} KB each on the wire; "
            f"dripcare's {dripcare_bytes / 1000:.1f} KB)"
        )
        print(throughput.format_cpu(peer["cpu"], peer["seconds"]))
        if args.with_dripcare:
            ours_ = run_dripcare(args, rundir, index)
            problems += ours_["problems"]
            if "rate" in ours_:
                ratios.append(ours_["rate"] / peer["rate"])
                ms = {"post_office": peer["cpu"]["post_office"], "dripcare": ours_["cpu"]}
                ms = {k: 1000 * v / args.messages for k, v in ms.items()}
                cpu_ratios.append(ms["post_office"] / ms["dripcare"] if ms["dripcare"] else 0)
                print(
                    f"round {index + 1}: dripcare {ours_['rate']:.0f} msg/s, post_office "
                    f"{peer['rate']:.0f} msg/s: ratio dripcare/post_office "
                    f"{ratios[-1]:.2f}; CPU per email (sending processes, start-up included) "
                    f"dripcare worker {ms['dripcare']:.2f} ms, post_office "
                    f"{ms['post_office']:.2f} ms: ratio {cpu_ratios[-1]:.2f} (cores={cores})"
                )
    if len(peers) > 1:
        print(
            f"post_office msg/s over {len(peers)} rounds: " + ", ".join(f"{r:.0f}" for r in peers)
        )
    if ratios:
        spread = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"ratio dripcare/post_office: {sorted(ratios)[len(ratios) // 2]:.2f} "
            f"(median of {spread}; aim >= 2.5; cores={cores})"
        )
        spread = ", ".join(f"{r:.2f}" for r in cpu_ratios)
        print(
            f"ratio of CPU per email post_office/dripcare: "
            f"{sorted(cpu_ratios)[len(cpu_ratios) // 2]:.2f} (median of {spread})"
        )
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    if not problems:
        import shutil

        shutil.rmtree(rundir, ignore_errors=True)
    else:
        print(f"logs kept in {rundir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
