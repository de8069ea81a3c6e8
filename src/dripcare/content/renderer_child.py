"""A renderer process: runs the calls `isolation` sends it, under its memory and CPU limits.

Started as `python -m dripcare.content.renderer_child MEMORY_BYTES` with pipes for stdin and stdout,
so it works whoever the parent is (a Celery prefork child may not start multiprocessing
children).
Each frame is a 4-byte big-endian length and a payload. The first frame from the parent is its
sys.path (pickled); then each request is a pickled (cpu_seconds, function, args) from the
trusted parent, and each reply is JSON, never pickle: this process runs untrusted templates, and
the parent must not unpickle what they could forge. The process exits at the end of its stdin,
which is also what happens when the parent dies.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import resource
import signal
import struct
import sys
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, BinaryIO

from dripcare.content.rendering import InvalidMjml, RenderError, TemplateSet, render_full

HEADER = struct.Struct(">I")
CACHED_TEMPLATE_SETS = 64

_templates: OrderedDict[str, TemplateSet] = OrderedDict()


def render(
    key: str,
    sources: dict[str, str],
    template: str,
    subject: str,
    preheader: str,
    context: dict[str, Any],
) -> dict[str, str]:
    """`render_full` with the compiled templates of earlier renders reused, as a JSON-able dict."""
    if key not in _templates:
        _templates[key] = TemplateSet.from_sources(sources)
    _templates.move_to_end(key)
    templates = _templates[key]
    while len(_templates) > CACHED_TEMPLATE_SETS:
        _templates.popitem(last=False)
    return dataclasses.asdict(render_full(templates, template, subject, preheader, context))


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    payload = stream.read(HEADER.unpack(header)[0])
    return payload if len(payload) == HEADER.unpack(header)[0] else None


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def error_reply(exc: BaseException) -> dict[str, Any]:
    """A RenderError as plain data, for `isolation` to raise again in the parent."""
    if isinstance(exc, RenderError):
        detail = exc.detail if isinstance(exc, InvalidMjml) else None
        kind = "InvalidMjml" if isinstance(exc, InvalidMjml) else "RenderError"
        return {"kind": kind, "message": str(exc), "where": exc.where, "line": exc.line,
                "detail": detail}  # fmt: skip
    traceback.print_exception(exc, file=sys.stderr)
    message = f"{type(exc).__name__}: {exc}"
    return {"kind": "Error", "message": message, "where": None, "line": None, "detail": None}


def limit_cpu(seconds: int) -> None:
    """Allow `seconds` more CPU time than used so far; past it the kernel kills this process."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime) + 1 + seconds
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )


def call(request: bytes) -> bytes:
    seconds, function, args = pickle.loads(request)  # from the trusted parent
    limit_cpu(seconds)
    typed: Callable[..., Any] = function
    try:
        return json.dumps({"ok": typed(*args)}).encode()
    except MemoryError:
        os._exit(3)  # the parent reports the memory limit and starts a fresh process
    except Exception as exc:  # every failure goes back as data
        return json.dumps({"error": error_reply(exc)}).encode()


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    while (request := read_frame(requests)) is not None:
        replies.write(frame(call(request)))
        replies.flush()


def main() -> None:
    """Keep the reply pipe private (a stray print goes to stderr), set the limits, serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which closes stdin
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    first = read_frame(requests)
    if first is None:
        return
    sys.path[:] = pickle.loads(first)  # import what the parent can
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = int(sys.argv[1])
    resource.setrlimit(
        resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard)
    )
    serve(requests, replies)


if __name__ == "__main__":
    main()
