"""Checking a campaign's templates before they are saved or published, with line numbers.

Five kinds of problem, each pointing at a step, a file (or the subject/preheader) and a line:
the campaign's shape (keys, offsets, send times, missing files), Jinja syntax, variables that
do not exist (found by reading every template, so a branch the sample data does not take is
checked too), MJML markup (an unclosed or unknown `mj-` tag, a bad attribute: read from the
file itself, since MRML gives no line), and anything that still fails when each step is
rendered with sample data (sandbox refusals, MJML errors, the time and size limits).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from dripcare.content.campaign_spec import CampaignSpec, StepSpec
from dripcare.content.email_context import clinic_context, clinic_sample_context
from dripcare.content.isolation import STOPPED, render_limited
from dripcare.content.mjml_structure import find_problem
from dripcare.content.rendering import (
    PREHEADER,
    SUBJECT,
    InvalidMjml,
    Rendered,
    RenderError,
    RenderTimeout,
    TemplateSet,
)
from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.outbox.scheduling import parse_local_time

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# Names Jinja provides inside templates on its own.
_JINJA_NAMES = {"loop", "super", "self", "varargs", "kwargs", "caller"}


@dataclass(frozen=True)
class Problem:
    """One thing to fix; `where` is a template file name, "subject" or "preheader"."""

    message: str
    step: str | None = None
    where: str | None = None
    line: int | None = None
    kind: str = "shape"  # shape | syntax | variable | markup | render | safety

    def __str__(self) -> str:
        if self.kind == "render":  # the render error names its own file and line
            return f"step {self.step!r} does not render: {self.message}"
        place = [f"step {self.step!r}"] if self.step else []
        if self.where:
            place.append(f"{self.where}" + (f" line {self.line}" if self.line else ""))
        return f"{', '.join(place)}: {self.message}" if place else self.message


class ProblemsFound(UserError):
    """Raised with every problem found, so an editor can show them all at once."""

    def __init__(self, summary: str, problems: list[Problem]) -> None:
        super().__init__(f"{summary}: " + "; ".join(str(p) for p in problems))
        self.summary, self.problems = summary, problems


_CACHE_MAX = 128
_results: OrderedDict[tuple[str, str, str], list[Problem]] = OrderedDict()
_results_lock = threading.Lock()


def remembered(
    kind: str,
    spec: CampaignSpec,
    clinic: Clinic | None,
    check: Callable[[CampaignSpec, Clinic | None], list[Problem]],
) -> list[Problem]:
    """A check's answer for this content and these clinic values, computed once per process.

    Checking renders every step (a tenth of a second or more), and the same content is checked
    again and again: each new clinic gets the shipped campaign, an editor re-checks on save.
    """
    key = (kind, spec.digest(), _clinic_key(clinic))
    with _results_lock:
        if key in _results:
            _results.move_to_end(key)
            return list(_results[key])
    problems = check(spec, clinic)
    if any(RenderTimeout.__name__ in p.message or STOPPED in p.message for p in problems):
        return problems  # a busy machine may do better next time
    with _results_lock:
        _results[key] = list(problems)
        while len(_results) > _CACHE_MAX:
            _results.popitem(last=False)
    return problems


def _clinic_key(clinic: Clinic | None) -> str:
    """Everything of a clinic that a rendered email can show."""
    if clinic is None:
        return ""
    own_care = (clinic.settings or {}).get("care", {})
    values = [clinic_context(clinic), clinic.emergency_number, own_care]
    return json.dumps(values, sort_keys=True, default=str)


def check_spec(spec: CampaignSpec, clinic: Clinic | None = None) -> list[Problem]:
    """Every problem that would stop this campaign from rendering; empty when it is fine."""
    return remembered("renders", spec, clinic, _check_spec)


def _check_spec(spec: CampaignSpec, clinic: Clinic | None) -> list[Problem]:
    problems = check_structure(spec)
    if problems:
        return problems
    templates = TemplateSet.from_sources(spec.sources)
    syntax = check_syntax(templates, spec)
    if syntax:  # every step using a broken file would only repeat it
        return syntax + check_variables(templates, spec)
    markup = check_markup(spec)
    return check_variables(templates, spec) + check_renders(templates, spec, clinic, markup)


def check_structure(spec: CampaignSpec) -> list[Problem]:
    problems: list[Problem] = []
    if not spec.steps:
        problems.append(Problem("a campaign needs at least one [[steps]] entry"))
    keys = [s.key for s in spec.steps]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        problems.append(Problem(f"step keys must be unique; repeated: {', '.join(duplicated)}"))
    for step in spec.steps:
        problems.extend(_step_shape(step, spec))
    problems.extend(_late_booking_shape(spec))
    return problems


def _pre_care_shape(step: StepSpec, offsets: tuple[int, int, int]) -> Iterator[Problem]:
    """stop_now is about pre-care; the late-booking email is sent at enrollment, not timed."""
    if step.stop_now and not min(offsets) < 0:
        yield Problem("stop_now is for pre-care steps: give it a negative offset", step.key)
    if step.late_booking and (any(offsets) or step.send_time or step.stop_now):
        yield Problem(
            "a late_booking step is sent at enrollment: it takes no offset, send_time or stop_now",
            step.key,
        )


def _late_booking_shape(spec: CampaignSpec) -> Iterator[Problem]:
    merged = [s.key for s in spec.steps if s.late_booking]
    if len(merged) > 1:
        yield Problem(f"at most one step may be late_booking; found {', '.join(merged)}")
    if merged and not any(s.stop_now for s in spec.steps):
        yield Problem(
            "a late_booking step merges the stop_now steps a late booking missed, but no step "
            "is stop_now",
            merged[0],
        )


def _step_shape(step: StepSpec, spec: CampaignSpec) -> Iterator[Problem]:
    if not KEY_PATTERN.fullmatch(step.key):
        yield Problem(
            f"step key {step.key!r} must be 1-64 lower-case letters, digits or dashes", step.key
        )
    if step.template not in spec.sources:
        yield Problem(f"step {step.key!r} names {step.template}, which is missing")
    offsets = (step.offset_days, step.offset_hours, step.offset_minutes)
    if any(type(v) is not int for v in offsets):
        yield Problem("offset values must be whole numbers (negative: before treatment)", step.key)
    elif min(offsets) < 0 < max(offsets):
        yield Problem(
            "offsets must all be ≤ 0 (before the treatment) or all ≥ 0 (after it)", step.key
        )
    yield from _pre_care_shape(step, offsets)
    if step.send_time:
        try:
            parse_local_time(step.send_time)
        except ValueError as exc:
            yield Problem(str(exc), step.key)
    if not step.subject.strip():
        yield Problem("the subject is empty", step.key, SUBJECT)


def check_syntax(templates: TemplateSet, spec: CampaignSpec) -> list[Problem]:
    problems = []
    for _, where, source, step in _texts(spec):
        try:
            templates.html_env.parse(source, name=where)
        except TemplateSyntaxError as exc:
            message = f"Jinja syntax: {exc.message}"
            problems.append(Problem(message, step, where, exc.lineno, "syntax"))
    return problems


def _texts(spec: CampaignSpec) -> Iterator[tuple[str, str, str, str | None]]:
    """(name, where, source, step key) of every template file and every subject/preheader."""
    for name, source in sorted(spec.sources.items()):
        yield name, name, source, None
    for step in spec.steps:
        yield f"{step.key}:{SUBJECT}", SUBJECT, step.subject, step.key
        yield f"{step.key}:{PREHEADER}", PREHEADER, step.preheader, step.key


def check_markup(spec: CampaignSpec) -> list[Problem]:
    """The first MJML structure problem of each template file, at its line in that file."""
    problems = []
    for name, source in sorted(spec.sources.items()):
        found = find_problem(source)
        if found:
            message = f"MJML, column {found.column}: {found.message}"
            problems.append(Problem(message, None, name, found.line, "markup"))
    return problems


def check_renders(
    templates: TemplateSet,
    spec: CampaignSpec,
    clinic: Clinic | None = None,
    markup: Sequence[Problem] = (),
) -> list[Problem]:
    """Render every step; MRML's complaint about a file with a markup problem is added to it
    (MRML gives no line) rather than listed again for every step using the file."""
    problems = []
    said: dict[str | None, str] = {}  # file with a markup problem -> what MRML said
    for step in spec.steps:
        try:
            render_sample(templates, spec, step, clinic)
        except InvalidMjml as exc:
            located = _files_of(templates, spec, step.template) & {p.where for p in markup}
            for name in located:
                said.setdefault(name, exc.detail)
            if not located:
                problems.append(Problem(str(exc), step.key, exc.where, exc.line, "render"))
        except RenderError as exc:
            problems.append(Problem(str(exc), step.key, exc.where, exc.line, "render"))
    explained = [
        dataclasses.replace(p, message=f"{p.message}; MRML says: {said[p.where]}")
        if p.where in said
        else p
        for p in markup
    ]
    return explained + problems


def _files_of(templates: TemplateSet, spec: CampaignSpec, name: str) -> set[str | None]:
    """The template file and every file it extends or includes (by a constant name)."""
    found: set[str | None] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in found or current not in spec.sources:
            continue
        found.add(current)
        tree = templates.html_env.parse(spec.sources[current])
        todo.extend(n for n in meta.find_referenced_templates(tree) if n)
    return found


def render_sample(
    templates: TemplateSet, spec: CampaignSpec, step: StepSpec, clinic: Clinic | None
) -> Rendered:
    """The step with sample data, rendered in a renderer process under its limits."""
    missed = [s.key for s in spec.steps if s.stop_now] if step.late_booking else []
    context = clinic_sample_context(spec, step, clinic, missed)
    return render_limited(templates, step.template, step.subject, step.preheader, context)


def check_variables(templates: TemplateSet, spec: CampaignSpec) -> list[Problem]:
    """Variables used anywhere that the templates will never be given."""
    if not spec.steps:
        return []
    known = clinic_sample_context(spec, spec.steps[0], None)
    env = templates.html_env
    trees = {}
    for _, where, source, step in _texts(spec):
        try:
            trees[where, step] = env.parse(source, name=where)
        except TemplateSyntaxError:
            continue  # reported by check_syntax
    assigned = (
        {
            n.name
            for tree in trees.values()
            for n in tree.find_all(nodes.Name)
            if n.ctx in ("store", "param")
        }
        | set(env.globals)
        | _JINJA_NAMES
    )
    problems = []
    for (where, step), tree in trees.items():
        for line, message in _undefined(tree, known, assigned):
            problems.append(Problem(message, step, where, line, "variable"))
    return sorted(set(problems), key=lambda p: (p.where or "", p.line or 0, p.message))


def _undefined(
    tree: nodes.Template, known: dict[str, Any], assigned: set[str]
) -> Iterator[tuple[int, str]]:
    free = meta.find_undeclared_variables(tree) - assigned
    for name in tree.find_all(nodes.Name):
        if name.name in free and name.name not in known:
            yield name.lineno, _unknown_name(name.name, known)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        base = node.node
        if not isinstance(base, nodes.Name) or base.name not in free:
            continue
        namespace = known.get(base.name)
        attr = _attribute(node)
        if isinstance(namespace, dict) and attr is not None and attr not in namespace:
            yield node.lineno, _unknown_attr(base.name, attr, namespace)


def _attribute(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    arg = node.arg
    return arg.value if isinstance(arg, nodes.Const) and isinstance(arg.value, str) else None


def _unknown_name(name: str, known: dict[str, Any]) -> str:
    return f"'{name}' is undefined; the variables are: {', '.join(sorted(known))}"


def _unknown_attr(base: str, attr: str, namespace: dict[str, Any]) -> str:
    return f"'{base}.{attr}' is undefined; {base} has: {', '.join(sorted(namespace))}"
