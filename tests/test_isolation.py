"""Renderer processes: a render over the memory, CPU or wall-clock limit is stopped, reported as
a RenderError, and the next render works (issue 12)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import billiard
import pytest

from dripcare.content import isolation
from dripcare.content.rendering import InvalidMjml, RenderError
from tests.test_rendering import make_context, one_template, simple_step


def allocate(size: int) -> int:
    return len(bytearray(size))


def spin() -> None:
    while True:
        pass


def sleep(seconds: float) -> None:
    time.sleep(seconds)


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    """Limits are given to a pool when it starts: tests that change them get their own."""
    isolation.shutdown()
    yield
    isolation.shutdown()


def render(body: str) -> str:
    templates = one_template(body)
    return isolation.render_limited(templates, "t.mjml", "S", "P", make_context(simple_step())).html


def test_a_render_in_a_renderer_process_is_the_same_as_in_this_one() -> None:
    assert "Hello Alex" in render("Hello {{ patient.first_name }}")


def test_errors_come_back_with_their_place() -> None:
    with pytest.raises(RenderError) as info:
        render("{{ nope }}")
    assert (info.value.where, info.value.line) == ("t.mjml", 1)
    with pytest.raises(InvalidMjml) as mjml:
        isolation.render_limited(
            one_template("x").__class__.from_sources({"t.mjml": "<mjml>"}),
            "t.mjml",
            "S",
            "P",
            make_context(simple_step()),
        )
    assert mjml.value.detail


@pytest.mark.usefixtures("fresh_pool")
def test_memory_over_the_limit_is_a_render_error_and_the_pool_recovers() -> None:
    with pytest.raises(RenderError, match=r"MiB of memory .* was stopped"):
        isolation.run_limited("t.mjml", allocate, 2 * isolation.CHILD_MEMORY_BYTES)
    assert isolation.run_limited("t.mjml", allocate, 1000) == 1000


@pytest.mark.slow  # spends a renderer's CPU limit
@pytest.mark.usefixtures("fresh_pool")
def test_cpu_time_over_the_limit_kills_the_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "CHILD_CPU_SECONDS", 1)
    monkeypatch.setattr(isolation, "WALL_SECONDS", 120.0)
    with pytest.raises(RenderError, match="seconds of CPU time and was stopped"):
        isolation.run_limited("t.mjml", spin)
    assert "Hello" in render("Hello")


@pytest.mark.usefixtures("fresh_pool")
def test_a_render_past_the_wall_clock_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    isolation.run_limited("t.mjml", allocate, 1)  # the pool is up: only the sleep is too long
    monkeypatch.setattr(isolation, "WALL_SECONDS", 0.5)
    with pytest.raises(RenderError, match=r"took longer than 0\.5 seconds and was stopped"):
        isolation.run_limited("t.mjml", sleep, 600)
    monkeypatch.setattr(isolation, "WALL_SECONDS", 120.0)
    assert "Hello" in render("Hello")


def test_a_stray_print_in_the_renderer_does_not_break_the_reply() -> None:
    assert isolation.run_limited("t.mjml", print, "noise") is None
    assert "Hello" in render("Hello")


def test_an_unexpected_error_in_the_renderer_is_a_render_error() -> None:
    with pytest.raises(RenderError, match=r"'t\.mjml': ZeroDivisionError"):
        isolation.run_limited("t.mjml", divmod, 1, 0)


def render_in_a_pool_child(body: str) -> str:
    return render(body)


def test_renders_work_inside_a_celery_prefork_child() -> None:
    """billiard's pool children are daemonic: multiprocessing may not start children there.
    The renderers of this process are running when the pool forks: the child starts its own."""
    assert "Hello" in render("Hello")
    with billiard.Pool(1) as pool:
        assert "Hello Alex" in pool.apply(
            render_in_a_pool_child, ("Hello {{ patient.first_name }}",)
        )


RENDER_THEN_WAIT = """
import subprocess
import sys
import time
from dripcare.content import isolation
isolation.run_limited("t.mjml", len, "started")
print("ready", flush=True)
time.sleep(600)
"""


def test_the_renderers_exit_when_their_parent_is_killed() -> None:
    """The renderer shares the parent's stderr: the pipe ends only when both have exited."""
    parent = subprocess.Popen(
        [sys.executable, "-c", RENDER_THEN_WAIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert parent.stdout is not None and parent.stdout.readline() == b"ready\n"
    parent.kill()
    _, stderr = parent.communicate(timeout=60)  # returns only at the end of the renderer too
    assert stderr == b""


def test_threads_share_the_renderers_and_each_gets_its_own_answer() -> None:
    names = [f"Name{i}" for i in range(40)]
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda name: isolation.run_limited("t.mjml", str, name), names))
    assert answers == names
