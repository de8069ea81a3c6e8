"""Render admin-supplied templates in a child process with CPU, memory and wall-clock limits.

The sandbox (`sandbox`) bounds what a template can build, but a gap in those checks must not
stall or exhaust the API or a worker. So previews, save and publish checks, test sends and each
version's first render in a worker run in a small long-lived pool of renderer processes: each
render may use CHILD_CPU_SECONDS of CPU (RLIMIT_CPU) and CHILD_MEMORY_BYTES of address space
(RLIMIT_AS), and is abandoned after WALL_SECONDS, its process killed and the pool started anew.
A render costs one round trip to the child (about a millisecond); the per-message path of the
render cache does not come here.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from dripcare.rendering import Rendered, RenderError, TemplateSet, render_full

log = logging.getLogger(__name__)

CHILD_MEMORY_BYTES = 1024 * 1024 * 1024
CHILD_CPU_SECONDS = 5
WALL_SECONDS = 10.0
POOL_SIZE = 2
STOPPED = "was stopped"  # in every message of a render this module cut short

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def render_limited(
    templates: TemplateSet, template: str, subject: str, preheader: str, context: Mapping[str, Any]
) -> Rendered:
    """`render_full` in a renderer process; a render over a limit is a RenderError."""
    args = (templates.key, dict(templates.sources), template, subject, preheader, dict(context))
    rendered: Rendered = run_limited(template, _render_in_child, *args)
    return rendered


def run_limited(template: str, function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a renderer process (a module-level function: it is pickled)."""
    pool = _get_pool()
    try:
        future = pool.submit(_within_cpu_limit, CHILD_CPU_SECONDS, function, args)
        return future.result(timeout=WALL_SECONDS)
    except FutureTimeout:
        _recycle(pool)
        raise RenderError(
            f"template {template!r}: rendering took longer than {WALL_SECONDS:g} seconds and "
            f"{STOPPED}; make loops shorter or remove them",
            template,
        ) from None
    except (BrokenProcessPool, MemoryError) as exc:
        _recycle(pool)
        mib = CHILD_MEMORY_BYTES // 2**20
        raise RenderError(
            f"template {template!r}: rendering used more than {mib} MiB of memory or "
            f"{CHILD_CPU_SECONDS} seconds of CPU time and {STOPPED}; use smaller values "
            "and shorter loops",
            template,
        ) from exc


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["dripcare.isolation"])
            _pool = ProcessPoolExecutor(
                POOL_SIZE, context, initializer=_limit_memory, initargs=(CHILD_MEMORY_BYTES,)
            )
        return _pool


def _recycle(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's processes (one may be stuck in a C call) and start a new pool next time."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    log.warning("a template render exceeded a limit; renderer processes restarted")
    for process in list((pool._processes or {}).values()):  # no public way to kill a stuck one
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the renderer processes (tests, and a clean exit)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


# ---- in the renderer process -----------------------------------------------------------------


def _limit_memory(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _within_cpu_limit(seconds: int, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """`function(*args)` with `seconds` more of CPU time than this process has used so far
    (past it, the kernel kills the process and the parent sees a broken pool)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime) + 1 + seconds
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )
    return function(*args)


_templates: OrderedDict[str, TemplateSet] = OrderedDict()


def _render_in_child(
    key: str,
    sources: dict[str, str],
    template: str,
    subject: str,
    preheader: str,
    context: dict[str, Any],
) -> Rendered:
    if key not in _templates:  # compiled templates are reused
        _templates[key] = TemplateSet.from_sources(sources)
    _templates.move_to_end(key)
    templates = _templates[key]
    while len(_templates) > 64:
        _templates.popitem(last=False)
    return render_full(templates, template, subject, preheader, context)
