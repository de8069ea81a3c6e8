"""The Jinja sandbox that admin-edited templates run in, with limits on every value they build.

Jinja's sandbox blocks unsafe attributes, but not `'x' * 10**9`, `a ~ a` repeated, `'%s%s' %`
with large arguments, `lipsum(1000, max=1000)` or `'\\t'.expandtabs(10**6)`; checking the output
size after rendering comes too late to save the process's memory. So every operator, call and
filter result is checked (strings: MAX_VALUE_CHARS characters; lists: MAX_ITEMS items and
MAX_VALUE_CHARS printed; integers: MAX_INT_BITS bits), and the few operations that can build a
value many times larger than their inputs in one C call are estimated before they run. Loops and
calls check a CPU-time deadline. The process running the render adds memory and CPU limits
(`isolation`), which catch anything these checks miss.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import islice
from typing import Any, TypeVar, cast

from jinja2 import Environment, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

T = TypeVar("T")

MAX_OUTPUT_CHARS = 1_000_000
MAX_VALUE_CHARS = MAX_OUTPUT_CHARS
MAX_ITEMS = 100_000
MAX_INT_BITS = 4096
MAX_RENDER_SECONDS = 2.0
MAX_LIPSUM_PARAGRAPHS, MAX_LIPSUM_WORDS = 20, 200


class LimitExceeded(SecurityError):
    """A template built (or was about to build) a value over one of the limits above."""


class RenderTimeout(SecurityError):
    """A template ran past MAX_RENDER_SECONDS (a loop over a huge range, say).

    The seconds are the rendering thread's CPU time, not the wall clock: a runaway template
    burns CPU, while a busy machine only stretches the wall clock of an innocent one.
    """


def _too_large(what: str) -> LimitExceeded:
    return LimitExceeded(
        f"{what} would build a value over {MAX_VALUE_CHARS} characters (or "
        f"{MAX_ITEMS} list items, or a {MAX_INT_BITS}-bit number): use smaller values"
    )


_deadline: ContextVar[float] = ContextVar("render_deadline", default=float("inf"))


@contextmanager
def deadline() -> Iterator[None]:
    """Renders inside this block stop after MAX_RENDER_SECONDS of this thread's CPU time."""
    token = _deadline.set(time.thread_time() + MAX_RENDER_SECONDS)
    try:
        yield
    finally:
        _deadline.reset(token)


def _check_deadline() -> None:
    if time.thread_time() > _deadline.get():
        raise RenderTimeout(
            f"rendering took longer than {MAX_RENDER_SECONDS:g} seconds; "
            "make loops shorter or remove them"
        )


_TIMED_FILTER = "dripcare_timed_loop"


def _timed(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` loop iterates through this, so no loop outlives the deadline."""
    for item in iterable:
        _check_deadline()
        yield item


def text_size(value: Any, memo: dict[int, int] | None = None) -> int:
    """About how many characters `value` prints as (a list prints its items' reprs).

    Shared objects are measured once (`[[s] * 1000] * 1000` is cheap to measure), but each
    reference to them counts, as it does in the printed text.
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 16
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    memo[id(value)] = 0  # a list containing itself (not possible when immutable) counts once
    items = [*value, *value.values()] if isinstance(value, dict) else value
    size = sum(text_size(item, memo) + 4 for item in items)
    memo[id(value)] = size
    return size


def _over_limit(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) > MAX_VALUE_CHARS
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() > MAX_INT_BITS
    if isinstance(value, list | tuple | dict | set | frozenset):
        return len(value) > MAX_ITEMS or text_size(value) > MAX_VALUE_CHARS
    return False


def checked(value: T, what: str = "an expression") -> T:
    """`value`, once it is known to be within the limits."""
    if _over_limit(value):
        raise _too_large(what)
    return value


def _refuse_over(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise _too_large(what)


def _largest(values: Iterable[Any]) -> int:
    return max((text_size(v) for v in values), default=0)


def _format_size(text: str, args: Iterable[Any]) -> int:
    """An upper bound for `text % args` or `text.format(*args)`: each placeholder may print
    the largest argument, padded to a width written in the format string."""
    widths = [int(n) for n in _numbers(text)]
    if any(w > MAX_VALUE_CHARS for w in widths):
        raise _too_large("a format width")
    each = max(_largest(args), max(widths, default=0))
    return len(text) + (text.count("%") + text.count("{")) * each


def _numbers(text: str) -> Iterator[str]:
    digits = ""
    for char in text:
        if char.isdigit():
            digits += char
            if len(digits) > 7:
                raise _too_large("a format width")
        elif digits:
            yield digits
            digits = ""
    if digits:
        yield digits


def _join_size(separator: str, items: Any) -> tuple[Any, int]:
    """(the items as a list, an upper bound of the joined text): a generator is read once."""
    if not isinstance(items, str | list | tuple | dict | set | frozenset):
        items = list(islice(items, MAX_ITEMS + 1))
    checked(items if not isinstance(items, str) else "", "join")
    if len(items) > MAX_ITEMS:
        raise _too_large("join")
    return items, text_size(items) + len(separator) * len(items)


def _replace_size(text: Any, old: Any, new: Any) -> int:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    grows = text.count(old) * max(len(new) - len(old), 0) if old else (len(text) + 1) * len(new)
    return len(text) + grows


# Estimates of str methods that can multiply their input: (target, args, kwargs) -> characters.
_METHOD_SIZES: dict[str, Callable[[str, tuple[Any, ...], dict[str, Any]], int]] = {
    "expandtabs": lambda s, a, k: len(s) + s.count("\t") * int(a[0] if a else k.get("tabsize", 8)),
    "format": lambda s, a, k: _format_size(s, [*a, *k.values()]),
    "format_map": lambda s, a, k: _format_size(s, list(a[0].values()) if a else []),
    "replace": lambda s, a, k: _replace_size(s, *a[:2]) if len(a) >= 2 else 0,
    "translate": lambda s, a, k: len(s) * max(_largest(a[0].values()), 1) if a else 0,
}


def _check_method(name: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    values = [*args, *kwargs.values()]
    what = name.removeprefix("safe_") or "a call"
    if any(isinstance(v, int) and abs(v) > MAX_VALUE_CHARS for v in values):
        raise _too_large(what)  # a width, count or tab size: ljust, center, zfill, ...
    if not isinstance(target, str):
        return
    if name == "join" and args:
        _refuse_over(_join_size(target, args[0])[1], "join")
    elif name in _METHOD_SIZES:
        _refuse_over(_METHOD_SIZES[name](target, args, kwargs), what)


def _filter_size(name: str, a: dict[str, Any]) -> int:
    """An upper bound for the filters whose parameters can multiply their input."""
    if name == "center":
        return max(text_size(a["value"]), cast(int, a["width"]))
    if name == "indent":
        text, width = str(a["s"]), a["width"]
        return len(text) + (text.count("\n") + 1) * (
            len(width) if isinstance(width, str) else width
        )
    if name == "wordwrap":
        text, wrap = str(a["s"]), a["wrapstring"] or "\n"
        return len(text) + (
            len(text) // max(cast(int, a["width"]), 1) + text.count("\n") + 1
        ) * len(wrap)
    if name == "replace":
        return _replace_size(a["s"], a["old"], a["new"])
    if name == "format":
        return _format_size(str(a["value"]), [*a["args"], *a["kwargs"].values()])
    if name == "truncate":
        return len(str(a["s"])) + len(str(a["end"]))
    return 0


_PASSED = (Environment, EvalContext, Context)


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, after its estimate and before its result is let through."""
    signature = inspect.signature(original) if inspect.isfunction(original) else None

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        values = [a for a in args if not isinstance(a, _PASSED)] + list(kwargs.values())
        if any(isinstance(v, int) and abs(v) > MAX_VALUE_CHARS for v in values):
            raise _too_large(f"the {name} filter")
        if name == "join":
            assert signature is not None
            bound = signature.bind(*args, **kwargs)
            items, size = _join_size(str(bound.arguments.get("d", "")), bound.arguments["value"])
            _refuse_over(size, "the join filter")
            bound.arguments["value"] = items
            args, kwargs = bound.args, bound.kwargs
        elif name in ("center", "indent", "wordwrap", "replace", "format", "truncate"):
            assert signature is not None
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            _refuse_over(_filter_size(name, bound.arguments), f"the {name} filter")
        return checked(original(*args, **kwargs), f"the {name} filter")

    bounded.__dict__.update(
        getattr(original, "__dict__", {})
    )  # keeps Jinja's pass_context/… markers
    bounded.__wrapped__ = original  # type: ignore[attr-defined]
    return bounded


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n > MAX_LIPSUM_PARAGRAPHS or max > MAX_LIPSUM_WORDS or min > max:
        raise LimitExceeded(
            f"lipsum is limited to {MAX_LIPSUM_PARAGRAPHS} paragraphs of "
            f"{MAX_LIPSUM_WORDS} words; ask for fewer"
        )
    return generate_lorem_ipsum(n, html, min, max)


@functools.cache
def _bounded_filters() -> dict[str, Callable[..., Any]]:
    """Jinja's filters, each bounded (built once: every environment shares them)."""
    bounded = {name: _bounded_filter(name, f) for name, f in DEFAULT_FILTERS.items()}
    return {**bounded, _TIMED_FILTER: _timed}


class _BoundedCodeGenerator(CodeGenerator):
    """`a ~ b ~ c` is one join of all its parts in Jinja: their sizes are added up first.

    Printed constant expressions are computed when the template runs, not when it compiles,
    so the checks apply to them too (the template's own text stays a constant).
    """

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every operator, call and filter result size-checked."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, **options: Any) -> None:
        # Jinja's optimizer folds constant expressions (`'x'|center(9) ~ 'x'`) at compile
        # time, outside these checks.
        super().__init__(**options, optimized=False)
        self.globals["lipsum"] = _lipsum
        self.filters.update(_bounded_filters())

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Wrap every loop's iterable so that the render deadline is checked on each pass."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _TIMED_FILTER, [], [], None, None)
            loop.iter.set_lineno(loop.lineno)
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        what = f"the {operator} operator"
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _refuse_over(text_size(seq) * max(times, 0), what)
                    if len(seq) * max(times, 0) > MAX_ITEMS and not isinstance(seq, str):
                        raise _too_large(what)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
                raise _too_large(what)
        elif operator == "%" and isinstance(left, str):
            if isinstance(right, dict):
                args = list(right.values())
            else:
                args = list(right) if isinstance(right, tuple) else [right]
            _refuse_over(_format_size(left, args), what)
        return checked(super().call_binop(context, operator, left, right), what)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        name = getattr(method, "__name__", "")
        _check_method(name, getattr(method, "__self__", None), args, kwargs)
        return checked(super().call(__context, __obj, *args, **kwargs), name or "a call")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_deadline()
        return super().getattr(obj, attribute)

    def checked_concat(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """`a ~ b ~ c`, once the parts are known to fit."""
        _check_deadline()
        memo: dict[int, int] = {}
        _refuse_over(sum(text_size(part, memo) for part in parts), "the ~ operator")
        return checked(join(parts), "the ~ operator")

    def concat(self, parts: Iterable[str]) -> str:
        """The rendered output, stopped as soon as it passes MAX_OUTPUT_CHARS."""
        out, size = [], 0
        for part in parts:
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise LimitExceeded(
                    f"the template produced more than {MAX_OUTPUT_CHARS} characters; "
                    "make it shorter"
                )
            out.append(part)
        return "".join(out)
