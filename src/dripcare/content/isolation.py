"""Render admin-supplied templates in a child process with CPU, memory and wall-clock limits.

The sandbox (`sandbox`) bounds what a template can build, but a gap in those checks must not
stall or exhaust the API or a worker. So previews, save and publish checks, test sends and each
version's first render in a worker run in a small long-lived pool of renderer processes
(`renderer_child`): each render may use CHILD_CPU_SECONDS of CPU (RLIMIT_CPU) and
CHILD_MEMORY_BYTES of address space (RLIMIT_AS), and is abandoned after WALL_SECONDS, its process
killed and started anew on the next render.

The children are plain `subprocess` processes on pipes, not multiprocessing ones: those cannot be
started from a Celery prefork (daemonic) child. Replies are JSON, so a template cannot make this
process unpickle anything. A render costs one round trip to a child (about 100 microseconds,
plus pickling its context); the per-message path of the render cache does not come here.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from dripcare.content import renderer_child
from dripcare.content.rendering import InvalidMjml, Rendered, RenderError, TemplateSet

CHILD_MEMORY_BYTES = 1024 * 1024 * 1024
CHILD_CPU_SECONDS = 5
WALL_SECONDS = 10.0
POOL_SIZE = 2
STOPPED = "was stopped"  # in every message of a render this module cut short


class _Stopped(Exception):
    """The child died (a limit, or a crash) or ran past the wall clock; it has been killed."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__()
        self.timed_out = timed_out


def render_limited(
    templates: TemplateSet, template: str, subject: str, preheader: str, context: Mapping[str, Any]
) -> Rendered:
    """`render_full` in a renderer process; a render over a limit is a RenderError."""
    args = (templates.key, dict(templates.sources), template, subject, preheader, dict(context))
    return Rendered(**run_limited(template, renderer_child.render, *args))


def run_limited(template: str, function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a renderer process: a module-level function (pickled by name) that
    returns JSON-able data. A RenderError it raises is raised here; any other error becomes one."""
    request = pickle.dumps((CHILD_CPU_SECONDS, function, args))
    pool = _get_pool()
    child = pool.get()
    try:
        reply = child.call(request, WALL_SECONDS)
    except _Stopped as stopped:
        raise _limit_error(template, stopped.timed_out) from None
    finally:
        pool.put(child)
    if "error" in reply:
        raise _rebuilt_error(template, reply["error"])
    return reply["ok"]


def _limit_error(template: str, timed_out: bool) -> RenderError:
    if timed_out:
        return RenderError(
            f"template {template!r}: rendering took longer than {WALL_SECONDS:g} seconds and "
            f"{STOPPED}; make loops shorter or remove them",
            template,
        )
    mib = CHILD_MEMORY_BYTES // 2**20
    return RenderError(
        f"template {template!r}: rendering used more than {mib} MiB of memory or "
        f"{CHILD_CPU_SECONDS} seconds of CPU time and {STOPPED}; use smaller values "
        "and shorter loops",
        template,
    )


def _rebuilt_error(template: str, error: dict[str, Any]) -> RenderError:
    if error["kind"] == "InvalidMjml":
        return InvalidMjml(str(error["where"]), str(error["detail"]))
    if error["kind"] == "RenderError":
        return RenderError(str(error["message"]), error["where"], error["line"])
    return RenderError(f"template {template!r}: {error['message']}", template)


class _Child:
    """One renderer process, started on first use and again after it was killed. Used by one
    thread at a time (the pool's queue hands it out)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def call(self, request: bytes, wall_seconds: float) -> dict[str, Any]:
        process = self.process or self._start()
        deadline = time.monotonic() + wall_seconds
        try:
            _write(process, renderer_child.frame(request))
            header = _read(process, renderer_child.HEADER.size, deadline)
            payload = _read(process, renderer_child.HEADER.unpack(header)[0], deadline)
        except (OSError, EOFError, TimeoutError) as exc:
            self.kill()
            raise _Stopped(isinstance(exc, TimeoutError)) from exc
        reply: dict[str, Any] = json.loads(payload)
        return reply

    def _start(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dripcare.content.renderer_child", str(CHILD_MEMORY_BYTES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        _write(self.process, renderer_child.frame(pickle.dumps(sys.path)))
        return self.process

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()
            _close(process)

    def stop(self) -> None:
        """Close stdin (the child exits), then kill it if it does not go within a second."""
        process, self.process = self.process, None
        if process is None:
            return
        _close(process)
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def forget(self) -> None:
        """In a forked copy of the parent: close the pipes, so the child still sees the end of
        its stdin when the real parent goes, and leave the process to its parent."""
        process, self.process = self.process, None
        if process is not None:
            _close(process)
            process.returncode = 0  # not ours to wait for


def _write(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(data)
    process.stdin.flush()


def _read(process: subprocess.Popen[bytes], size: int, deadline: float) -> bytes:
    """`size` bytes from the child, or EOFError if it died, or TimeoutError past `deadline`."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    chunks: list[bytes] = []
    while size:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _close(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


_children: list[_Child] = []
_pool: queue.Queue[_Child] | None = None
_pool_lock = threading.Lock()


def _get_pool() -> queue.Queue[_Child]:
    global _pool
    with _pool_lock:
        if _pool is None:
            _children[:] = [_Child() for _ in range(POOL_SIZE)]
            _pool = queue.Queue()
            for child in _children:
                _pool.put(child)
        return _pool


def shutdown() -> None:
    """Stop the renderer processes (tests, and at exit); the next render starts new ones."""
    global _pool
    with _pool_lock:
        children, _pool = list(_children), None
        _children.clear()
    for child in children:
        child.stop()


def _after_fork() -> None:
    """A forked process (a Celery prefork child) starts its own renderers when it needs them."""
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    for child in _children:
        child.forget()
    _children.clear()
    _pool = None


atexit.register(shutdown)
os.register_at_fork(after_in_child=_after_fork)
