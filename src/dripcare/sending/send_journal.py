"""A worker process's note of the emails the server accepted and the database does not know yet.

Outcomes are written every DRIPCARE_RESULT_FLUSH emails. A process killed between two writes
(kill -9, the OOM killer) would leave up to that many accepted emails `sending`, and lease
recovery would send them all again. So right after each acceptance the process appends one line
(lease token, message row, campaign version) to its own file in `<state dir>/journal/`, and
empties it once the outcomes are committed. The kernel keeps what was written across a kill of
the process (no fsync: this guards against a process dying, not the machine). The next process
that starts on this host replays the files of processes that are gone, recording those emails
as sent under their token, before their lease can expire; the one email in flight at the kill
is all that can still come twice, with the same Message-ID.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    token: str
    pk: int
    version: int | None


class Journal:
    """This process's file: append after each acceptance, clear after each commit."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}.journal"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.dirty = False

    def accepted(self, token: str, pk: int, version: int | None) -> None:
        os.write(self.fd, f"{token} {pk} {'' if version is None else version}\n".encode())
        self.dirty = True

    def committed(self) -> None:
        if self.dirty:
            os.ftruncate(self.fd, 0)
            self.dirty = False


_journals: dict[tuple[Path, int], Journal] = {}


def for_process(directory: Path) -> Journal:
    """One journal per process and directory (a forked child gets its own)."""
    key = (directory, os.getpid())
    if key not in _journals:
        _journals[key] = Journal(directory)
    return _journals[key]


def orphans(directory: Path) -> list[tuple[Path, list[Entry]]]:
    """The journals of processes that no longer run, with what they hold."""
    found = []
    for path in sorted(directory.glob("*.journal")) if directory.is_dir() else []:
        pid = int(path.stem)
        if pid == os.getpid() or _alive(pid):
            continue
        entries = []
        for line in path.read_text().splitlines():
            token, pk, version = [*line.split(" "), "", "", ""][:3]
            if token and pk.isdigit():  # a line cut short by the kill is skipped
                entries.append(Entry(token, int(pk), int(version) if version.isdigit() else None))
        found.append((path, entries))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
