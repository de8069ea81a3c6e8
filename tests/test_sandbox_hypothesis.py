"""Generated expressions of the template grammar never get past the sandbox's limits (issue 12).

Expressions are built from literals, the email context's variables, the operators (`~ + - * %
//`), the filters and str methods that can grow a value, and the globals, nested. Each render
must either succeed with output within MAX_OUTPUT_CHARS or fail with an error, and stay within
a memory budget (traced allocations) on the way.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined

from dripcare.content.sandbox import MAX_OUTPUT_CHARS, BoundedSandbox, deadline
from tests.fast_loop import examples
from tests.test_rendering import make_context, simple_step

MEMORY_BUDGET = 64 * 1024 * 1024
NUMBERS = [0, 1, 2, 3, 7, 64, 999, 10**5, 999_999, 10**6 + 1, 10**9]

numbers = st.sampled_from(NUMBERS).map(str)
strings = st.sampled_from(["''", "'x'", "'ab'", "'%s'", "'{0}'", "'\\t'", "'a\\nb'", "'%s%s'"])
variables = st.sampled_from(
    ["patient.first_name", "clinic.name", "treatment.date", "step.subject", "links.unsubscribe"]
)
lists = st.sampled_from(["[1, 2, 3]", "['a', 'b']", "range(1000)", "lipsum(2, false, 5, 10)"])
leaves = st.one_of(numbers, strings, variables, lists)


def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binop = st.tuples(inner, st.sampled_from(["~", "+", "-", "*", "%", "//"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    one_arg_filter = st.tuples(
        inner,
        st.sampled_from(["center", "indent", "wordwrap", "truncate", "join", "format"]),
        inner,
    ).map(lambda t: f"({t[0]})|{t[1]}({t[2]})")
    plain_filter = st.tuples(
        inner, st.sampled_from(["list", "string", "upper", "reverse", "join", "length", "sum"])
    ).map(lambda t: f"({t[0]})|{t[1]}")
    replace = st.tuples(inner, inner, inner).map(lambda t: f"({t[0]})|replace({t[1]}, {t[2]})")
    method = st.tuples(
        inner,
        st.sampled_from(["ljust", "rjust", "zfill", "center", "expandtabs", "format", "join"]),
        inner,
    ).map(lambda t: f"({t[0]}).{t[1]}({t[2]})")
    lipsum = st.tuples(numbers, numbers, numbers).map(
        lambda t: f"lipsum({t[0]}, false, {t[1]}, {t[2]})"
    )
    ranged = numbers.map(lambda n: f"range({n})")
    return st.one_of(binop, one_arg_filter, plain_filter, replace, method, lipsum, ranged)


expressions = st.recursive(leaves, extend, max_leaves=8)
ENV = BoundedSandbox(autoescape=True, undefined=StrictUndefined)
CONTEXT: dict[str, Any] = make_context(simple_step())


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # long reprs
@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(expression=expressions, twice=st.booleans())
def test_every_render_ends_within_the_limits(expression: str, twice: bool) -> None:
    source = f"{{% set v = {expression} %}}{{{{ v ~ v }}}}" if twice else f"{{{{ {expression} }}}}"
    tracemalloc.start()
    try:
        with deadline():
            output = ENV.from_string(source).render(CONTEXT)
    except MemoryError:
        raise
    except Exception:
        output = ""  # refused (a limit), or not meaningful (`'x' - 1`): both end the render
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert len(output) <= MAX_OUTPUT_CHARS
    assert peak <= MEMORY_BUDGET, f"{source} used {peak} bytes"
