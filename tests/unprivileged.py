"""Run commands as an unprivileged user, as a container's USER would run them.

The tests run as root here and in CI. `nobody` then runs each command (setpriv). This
project's interpreter may live where `nobody` cannot look (pyenv under /root, mode 700):
the command then runs in a private mount namespace where that directory is an empty
tmpfs holding only the paths it needs, bind-mounted, so nothing on the host changes.
"""

from __future__ import annotations

import itertools
import os
import shlex
import stat
import sys
from collections import defaultdict
from pathlib import Path

NOBODY = 65534


def is_root() -> bool:
    return os.geteuid() == 0


def _blocked_ancestor(path: Path) -> tuple[Path, str] | None:
    """The first directory on the way to `path` that others cannot enter, and its child there."""
    chain = [*reversed(path.parents), path]
    for directory, child in itertools.pairwise(chain):
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            return directory, child.name
    return None


def _mount_script(needed: list[Path], staging: Path) -> str:
    """Shell lines that make every path in `needed` reachable for others (private namespace)."""
    hidden: dict[Path, set[str]] = defaultdict(set)
    for path in needed:
        found = _blocked_ancestor(path.resolve())
        if found:
            hidden[found[0]].add(found[1])
    lines = ["set -e"]
    for index, (directory, children) in enumerate(sorted(hidden.items())):
        for child in sorted(children):
            stage = staging / f"{index}-{child}"
            source = directory / child
            lines += [f"mkdir -p {shlex.quote(str(stage))}"]
            lines += [f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(stage))}"]
        lines.append(f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(str(directory))}")
        for child in sorted(children):
            stage, target = staging / f"{index}-{child}", directory / child
            lines += [f"mkdir {shlex.quote(str(target))}"]
            lines += [f"mount --move {shlex.quote(str(stage))} {shlex.quote(str(target))}"]
    return "\n".join(lines)


def command(argv: list[str], needed: list[Path], staging: Path) -> list[str]:
    """`argv` as nobody (or as it is, when the tests do not run as root)."""
    if not is_root():
        return argv
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    script = _mount_script(needed, staging)
    if script == "set -e":
        return [*drop, *argv]
    return [
        "unshare",
        "--mount",
        "--propagation=private",
        "--",
        "sh",
        "-c",
        f'{script}\nexec "$@"',
        "sh",
        *drop,
        *argv,
    ]


def needed_paths(checkout: Path) -> list[Path]:
    """What a command of this checkout reads: the interpreter, the virtualenv, the sources."""
    return [Path(os.path.realpath(sys.executable)).parent.parent, Path(sys.prefix), checkout]


def give_to_nobody(path: Path) -> Path:
    """A directory the unprivileged user can write (a container's tmpfs or volume)."""
    path.mkdir(parents=True, exist_ok=True)
    if is_root():
        os.chown(path, NOBODY, NOBODY)
    path.chmod(0o700)
    return path


def unwritable(path: Path) -> Path:
    """A directory the unprivileged user can enter and read but not write (a container's /app)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755 if is_root() else 0o555)
    return path
