"""Tests for dripcare.content.rendering and dripcare.content.render_cache: the sandbox, escaping,
the text part and the cached Renderer.

The reference for every Renderer result is `render_full` on the same context (with the names
tidied to one line, which the Renderer does on purpose): the Renderer is an optimisation and
must never produce a different email.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

import dripcare.content.render_cache as render_cache
from dripcare.content.campaigns import CampaignSpec, StepSpec
from dripcare.content.email_context import SAMPLE_CLINIC, build_context
from dripcare.content.render_cache import Renderer
from dripcare.content.rendering import Rendered, RenderError, TemplateSet, render_full
from tests.campaign_fixtures import step_named

EMERGENCY_LINE = "Swelling of lips, tongue or throat, or trouble breathing: call {number} now."
# An HTML tag; "<https://...>" and "<tel:...>" (html2text's protected links) do not match.
HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")

OTHER_CLINIC = {
    "name": "Harbour Dermatology",
    "phone": "+44 20 7946 0000",
    "phone_uri": "tel:+442079460000",
    "opening_hours": "Tuesday to Saturday, 10am to 6pm",
    "after_hours": "call NHS 111",
    "brand_color": "#1e3a8a",
    "logo_url": "",
}

BODY = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>"
    "<p>{}</p>"
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)


def make_context(
    step: Any,
    *,
    care: dict[str, Any] | None = None,
    first_name: str = "Alex",
    last_name: str = "Sample",
    clinic: dict[str, Any] | None = None,
    emergency_number: str = "911",
    treatment_date: str = "Tuesday 24 November 2026",
    token: str = "tok123",
) -> dict[str, Any]:
    base = f"https://dripcare.example/x/{token}"
    return build_context(
        clinic=dict(clinic or SAMPLE_CLINIC),
        emergency_number=emergency_number,
        care=dict(care or {}),
        step=step,
        pointer_days=7,  # microneedling's
        first_name=first_name,
        last_name=last_name,
        treatment_name="Microneedling",
        treatment_date=treatment_date,
        links={
            "unsubscribe": f"{base}/unsubscribe",
            "preferences": f"{base}/preferences",
            "checkin_ok": f"{base}/checkin/ok",
            "checkin_worried": f"{base}/checkin/worried",
        },
    )


def simple_step(subject: str = "Subject", preheader: str = "Preheader") -> SimpleNamespace:
    return SimpleNamespace(
        key="custom", offset_days=0, subject=subject, preheader=preheader, checkin=False
    )


def one_template(body: str) -> TemplateSet:
    return TemplateSet.from_sources({"t.mjml": BODY.format(body)})


def render_plain(templates: TemplateSet) -> Rendered:
    """`t.mjml` with subject "S", preheader "P" and a plain step: only the body is under test."""
    return render_full(templates, "t.mjml", "S", "P", make_context(simple_step()))


def render_step(
    spec: CampaignSpec,
    templates: TemplateSet,
    step: StepSpec,
    preheader: str | None = None,
    first_name: str = "Alex",
) -> Rendered:
    """A step of the shipped campaign rendered in full, with its default care values."""
    return render_full(
        templates,
        step.template,
        step.subject,
        step.preheader if preheader is None else preheader,
        make_context(step, care=spec.variables, first_name=first_name),
    )


@pytest.fixture
def full_render_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every full render the Renderer does (it looks render_full and render_limited, for
    the preparation in a renderer process, up at call time)."""
    calls: list[str] = []
    for name in ("render_full", "render_limited"):
        real: Callable[..., Rendered] = getattr(render_cache, name)

        def spy(*args: Any, real: Callable[..., Rendered] = real, **kwargs: Any) -> Rendered:
            calls.append(args[1])
            return real(*args, **kwargs)

        monkeypatch.setattr(render_cache, name, spy)
    return calls


def tidied(context: dict[str, Any]) -> dict[str, Any]:
    """The context as the Renderer sees it: per-recipient names on one line, without NUL."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in context.items()}
    for key in ("first_name", "last_name"):
        out["patient"][key] = " ".join(out["patient"][key].replace("\x00", "").split())
    return out


def assert_same_as_full(
    renderer: Renderer,
    templates: TemplateSet,
    template: str,
    subject: str,
    preheader: str,
    context: dict[str, Any],
) -> Rendered:
    cached = renderer.render(templates, template, subject, preheader, context)
    full = render_full(templates, template, subject, preheader, tidied(context))
    in_cached = "dctoken" in (cached.html + cached.text + cached.subject).lower()
    in_full = "dctoken" in (full.html + full.text + full.subject).lower()
    assert in_cached == in_full, "a placeholder token leaked into the email"
    assert cached == full
    return cached


# ---- Renderer == render_full -------------------------------------------------------------------

PATIENT_NAMES = [
    pytest.param("Alex", "Sample", id="plain"),
    pytest.param("<script>alert(1)</script>", "<b>Bold</b>", id="script-tag"),
    pytest.param("Tom & Jerry", "A&amp;B", id="ampersand"),
    pytest.param('O\'Brien "Bob"', "d'Arcy", id="quotes"),
    pytest.param("Zoë 李 😀", "Ñúñez-Ålund", id="unicode"),
    pytest.param("", "", id="empty-names"),
    pytest.param("dcTOKEN1x", "dcT0q", id="looks-like-a-placeholder-token"),
    pytest.param("{{ 7 * 7 }}", "{% raw %}", id="jinja-syntax-as-data"),
    pytest.param("a\\b", "back\\slash", id="backslash"),
    pytest.param("Mary  Ann", "Lee\tSmith", id="inner-white-space"),
    pytest.param("Ann\nMarie", "O\r\nHara", id="newlines"),
    pytest.param("Ann\x00Marie", "\x00", id="NUL"),
]


@pytest.mark.parametrize("step_key", ["day-0", "day-1", "day-42"])
def test_renderer_matches_render_full_for_many_patients(
    spec: CampaignSpec, templates: TemplateSet, step_key: str
) -> None:
    step = step_named(spec, step_key)
    renderer = Renderer()  # one renderer for all patients: the cache is exercised
    for param in PATIENT_NAMES:
        first, last = param.values
        context = make_context(
            step, care=spec.variables, first_name=first, last_name=last, token=param.id
        )
        cached = assert_same_as_full(
            renderer, templates, step.template, step.subject, step.preheader, context
        )
        assert f"https://dripcare.example/x/{param.id}/unsubscribe" in cached.html


def test_names_are_tidied_to_one_line(spec: CampaignSpec, templates: TemplateSet) -> None:
    step = step_named(spec, "day-0")
    context = make_context(step, care=spec.variables, first_name=" Ann\r\n\tMarie\x00 ")
    cached = Renderer().render(templates, step.template, step.subject, step.preheader, context)
    assert "Hi Ann Marie," in cached.text.splitlines()
    assert "<p>Hi Ann Marie,</p>" in cached.html
    assert "\x00" not in cached.html + cached.text


def test_renderer_really_uses_the_prepared_render(
    spec: CampaignSpec, templates: TemplateSet, full_render_calls: list[str]
) -> None:
    """Guards the equality tests above: they must compare the substitution path, not a fallback."""
    step = step_named(spec, "day-1")
    renderer = Renderer()
    names = ["Alex", "Sam", "<i>Kim</i>", "Zoë"]
    contexts = [make_context(step, care=spec.variables, first_name=name) for name in names]
    renderer.render(templates, step.template, step.subject, step.preheader, contexts[0])
    after_first = len(full_render_calls)
    assert 1 <= after_first <= 2
    results = [
        renderer.render(templates, step.template, step.subject, step.preheader, context)
        for context in contexts[1:]
    ]
    assert len(full_render_calls) == after_first  # no more full renders
    for name, result in zip(names[1:], results, strict=True):
        assert f"Hi {name}," in result.text
        assert result == render_step(spec, templates, step, first_name=name)


def test_empty_first_name_takes_the_other_branch_through_the_cache(
    spec: CampaignSpec, templates: TemplateSet
) -> None:
    step = step_named(spec, "day-3")
    renderer = Renderer()
    outputs = {}
    for name in ["Alex", "", "Robin", "", "   "]:
        context = make_context(step, care=spec.variables, first_name=name)
        outputs[name] = assert_same_as_full(
            renderer, templates, step.template, step.subject, step.preheader, context
        ).text
    assert "Hi Alex," in outputs["Alex"]
    assert "Hi Robin," in outputs["Robin"]
    for blank in ["", "   "]:
        assert "Hello," in outputs[blank]
        assert "Hi ," not in outputs[blank] and "Hi," not in outputs[blank]


def test_changing_a_static_value_never_leaks_the_previous_clinic(
    spec: CampaignSpec, templates: TemplateSet
) -> None:
    step = step_named(spec, "day-7")
    renderer = Renderer()
    riverside = make_context(step, care=spec.variables)
    harbour = make_context(
        step,
        care={**spec.variables, "actives_days": 10, "spf_days": 21},
        clinic=OTHER_CLINIC,
        emergency_number="999",
    )
    for context in [riverside, harbour, riverside, harbour]:
        assert_same_as_full(
            renderer, templates, step.template, step.subject, step.preheader, context
        )

    second = renderer.render(templates, step.template, step.subject, step.preheader, harbour)
    assert "Harbour Dermatology" in second.html and "Harbour Dermatology" in second.text
    assert "+44 20 7946 0000" in second.text
    assert "Riverside" not in second.html + second.text
    assert "+1 555 010 0100" not in second.text
    assert EMERGENCY_LINE.format(number="999") in second.text
    assert "call 911" not in second.text
    assert "Our usual rule is 10 days after treatment." in second.text
    assert "every day for 21 days" in second.text


def test_a_change_of_one_care_value_alone_gets_a_fresh_render(
    spec: CampaignSpec, templates: TemplateSet
) -> None:
    step = step_named(spec, "day-0")
    renderer = Renderer()
    for hours in [24, 48, 24]:
        context = make_context(step, care={**spec.variables, "makeup_hours": hours})
        cached = assert_same_as_full(
            renderer, templates, step.template, step.subject, step.preheader, context
        )
        assert f"No makeup for {hours} hours." in cached.text


def test_evicted_entries_are_rebuilt_correctly(spec: CampaignSpec, templates: TemplateSet) -> None:
    step = step_named(spec, "day-14")
    renderer = Renderer(max_entries=1)
    contexts = [
        make_context(step, care=spec.variables, first_name="Ana"),
        make_context(step, care=spec.variables, first_name="Ben", clinic=OTHER_CLINIC),
    ]
    for context in contexts * 2:
        assert_same_as_full(
            renderer, templates, step.template, step.subject, step.preheader, context
        )


def test_per_recipient_values_in_subject_and_preheader() -> None:
    """A custom subject may greet the patient; escaping differs between subject and HTML."""
    step = simple_step()
    custom = one_template("Hello {{ patient.first_name }}")
    renderer = Renderer()
    subject = "{{ patient.first_name }}, your day 1 email"
    preheader = "For {{ patient.first_name }} {{ patient.last_name }}"
    for first in ["Alex", "<script>x</script>", "Tom & Jerry", 'O\'Brien "B"', "Zoë 李", ""]:
        context = make_context(step, first_name=first, last_name="Lee")
        cached = assert_same_as_full(renderer, custom, "t.mjml", subject, preheader, context)
        assert cached.subject == " ".join(f"{first}, your day 1 email".split())


def test_newline_in_a_name_never_reaches_the_subject() -> None:
    custom = one_template("x")
    context = make_context(simple_step(), first_name="Ann\r\nBcc: x@example.com")
    cached = Renderer().render(custom, "t.mjml", "Hi {{ patient.first_name }}", "P", context)
    assert cached.subject == "Hi Ann Bcc: x@example.com"


# ---- templates that look at a per-recipient value ----------------------------------------------

TRANSFORMS = [
    pytest.param("Hi {{ patient.first_name|upper }}", id="upper"),
    pytest.param("Hi {{ patient.first_name|lower }}", id="lower"),
    pytest.param(
        "Hi {{ patient.first_name|title }} {{ patient.last_name|capitalize }}", id="title"
    ),
    pytest.param(
        "{% if patient.first_name|length > 3 %}LONG {{ patient.first_name }}{% else %}"
        "SHORT {{ patient.first_name }}{% endif %}",
        id="length-gt-3",
    ),
    pytest.param(
        "{% if patient.first_name|length > 6 %}Dear {{ patient.first_name }}{% else %}"
        "Hi {{ patient.first_name }}{% endif %}",
        id="length-gt-6",
    ),
    pytest.param(
        "{% if patient.first_name == 'Alex' %}Welcome back{% else %}Hi{% endif %}", id="equals"
    ),
    pytest.param("Dear {{ patient.first_name[0] }}.", id="initial"),
    pytest.param("{{ patient.first_name|replace('a', '@') }}", id="replace"),
    pytest.param("{{ patient.first_name|truncate(3) }}", id="truncate"),
    pytest.param("{% if 'x' in patient.first_name %}has x{% else %}no x{% endif %}", id="in"),
    pytest.param("{{ patient['first_name']|upper }}", id="subscript"),
    pytest.param("{{ patient.first_name ~ '!' }}", id="concat"),
    pytest.param("{{ patient.first_name if patient.first_name else 'friend' }}", id="condexpr"),
    pytest.param("{% set n = patient.first_name %}{{ n|upper }}", id="set"),
    pytest.param("{% with n = patient.first_name %}{{ n|upper }}{% endwith %}", id="with"),
    pytest.param("{% for c in patient.first_name %}{{ c }}.{% endfor %}", id="loop"),
    pytest.param(
        "{% macro m(n) %}{{ n|upper }}{% endmacro %}{{ m(patient.first_name) }}", id="macro-arg"
    ),
]

# The value itself is printed plainly, but the printed output is transformed afterwards.
POST_PROCESSED = [
    pytest.param("{% filter upper %}Hi {{ patient.first_name }}{% endfilter %}", id="filter-block"),
    pytest.param("{% set g %}{{ patient.first_name }}{% endset %}{{ g|upper }}", id="set-block"),
    pytest.param(
        "{% set g %}{{ patient.first_name }}{% endset %}"
        "{% if g|length > 5 %}long{% else %}short{% endif %}",
        id="set-block-length",
    ),
    pytest.param(
        "{% macro m() %}{{ patient.first_name }}{% endmacro %}{{ m()|upper }}", id="macro-output"
    ),
    pytest.param(
        "{% macro w() %}{{ caller()|upper }}{% endmacro %}"
        "{% call w() %}{{ patient.first_name }}{% endcall %}",
        id="call-block",
    ),
    pytest.param(
        "{% block greet %}Hi {{ patient.first_name }}{% endblock %} {{ self.greet()|upper }}",
        id="self-block",
    ),
]

TRANSFORM_NAMES = ["Al", "Alex", "Maximilian", "xavier", "Anna-Lena"]


def _check_transform(templates: TemplateSet, template: str = "t.mjml") -> None:
    renderer = Renderer()
    for name in TRANSFORM_NAMES:
        context = make_context(simple_step(), first_name=name)
        assert_same_as_full(renderer, templates, template, "S", "P", context)


@pytest.mark.parametrize("body", TRANSFORMS)
def test_template_inspecting_a_value_falls_back_to_full_render(
    body: str, full_render_calls: list[str]
) -> None:
    _check_transform(one_template(body))
    # Fallback: at most the preparation, then one full render per message.
    assert len(TRANSFORM_NAMES) <= len(full_render_calls) <= len(TRANSFORM_NAMES) + 2


def test_upper_filter_output_is_right() -> None:
    custom = one_template("Hi {{ patient.first_name|upper }}!")
    renderer = Renderer()
    for name in ["zoë", "bob"]:
        context = make_context(simple_step(), first_name=name)
        result = renderer.render(custom, "t.mjml", "S", "P", context)
        assert f"Hi {name.upper()}!" in result.text
        assert f"Hi {name.upper()}!" in result.html


@pytest.mark.parametrize("body", POST_PROCESSED)
def test_output_transformed_after_printing_falls_back_to_full_render(body: str) -> None:
    _check_transform(one_template(body))


def test_super_block_transformed_in_child_falls_back() -> None:
    layout = BODY.format("{% block greet %}Hi {{ patient.first_name }}{% endblock %}")
    child = '{% extends "_l.mjml" %}{% block greet %}{{ super()|upper }}{% endblock %}'
    _check_transform(TemplateSet.from_sources({"_l.mjml": layout, "c.mjml": child}), "c.mjml")


def test_link_printed_as_its_own_text() -> None:
    _check_transform(one_template('<a href="{{ links.unsubscribe }}">{{ links.unsubscribe }}</a>'))


@pytest.mark.parametrize(
    "body",
    [
        "{% if patient.first_name %}Hi {{ patient.first_name }}{% else %}Hello{% endif %}",
        "{% if not treatment.date %}soon{% else %}on {{ treatment.date }}{% endif %}",
        '<a href="{{ links.preferences }}">Preferences for {{ patient.last_name }}</a>',
    ],
    ids=["if-name", "if-not-date", "link"],
)
def test_plainly_printed_values_are_cached(body: str, full_render_calls: list[str]) -> None:
    _check_transform(one_template(body))
    assert len(full_render_calls) <= 2  # prepared once, then only substitutions


# ---- sandbox -----------------------------------------------------------------------------------

SSTI_PAYLOADS = [
    pytest.param("{{ ''.__class__.__mro__ }}", "unsafe", id="str-mro"),
    pytest.param("{{ cycler.__init__.__globals__ }}", "unsafe", id="cycler-globals"),
    pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe", id="subclasses"),
    pytest.param("{{ ().__class__.__base__.__subclasses__() }}", "unsafe", id="tuple-base"),
    pytest.param("{{ self._TemplateReference__context }}", "unsafe", id="self-context"),
    pytest.param("{{ self.__init__ }}", "unsafe", id="self-init"),
    pytest.param("{{ config }}", "'config' is undefined", id="config"),
    pytest.param("{{ request }}", "'request' is undefined", id="request"),
    pytest.param('{{ "{0.__class__}".format(1) }}', "unsafe", id="str-format"),
    pytest.param('{{ "{a.__class__}".format_map({"a": 1}) }}', "unsafe", id="format-map"),
    pytest.param("{{ lipsum.__globals__.os }}", "unsafe", id="lipsum-globals"),
    pytest.param("{{ joiner.__init__.__globals__ }}", "unsafe", id="joiner-globals"),
    pytest.param("{{ namespace.__init__.__globals__ }}", "unsafe", id="namespace-globals"),
    pytest.param("{{ 'x'|attr('__class__') }}", "unsafe", id="attr-filter"),
    pytest.param("{{ patient.__class__ }}", "unsafe", id="context-dict-class"),
]


@pytest.mark.parametrize(("payload", "expected"), SSTI_PAYLOADS)
def test_ssti_payloads_fail_with_a_clear_render_error(payload: str, expected: str) -> None:
    context = make_context(simple_step())
    with pytest.raises(RenderError) as info:
        render_full(one_template(payload), "t.mjml", "S", "P", context)
    message = str(info.value)
    assert "'t.mjml'" in message
    assert expected in message
    if expected == "unsafe":
        assert "SecurityError" in message
    else:
        assert "UndefinedError" in message


@pytest.mark.parametrize(("payload", "expected"), SSTI_PAYLOADS[:3])
def test_ssti_payloads_fail_through_the_renderer_too(payload: str, expected: str) -> None:
    with pytest.raises(RenderError, match=expected):
        Renderer().render(one_template(payload), "t.mjml", "S", "P", make_context(simple_step()))


@pytest.mark.parametrize("where", ["subject", "preheader"], ids=["in-subject", "in-preheader"])
def test_ssti_in_subject_or_preheader_fails(where: str) -> None:
    texts = {"subject": "S", "preheader": "P", where: "{{ ''.__class__.__mro__ }}"}
    with pytest.raises(RenderError, match="unsafe"):
        render_full(
            one_template("x"),
            "t.mjml",
            texts["subject"],
            texts["preheader"],
            make_context(simple_step()),
        )


@pytest.mark.parametrize(
    ("payload", "section", "key"),
    [
        ("{% set _ = care.update({'makeup_hours': 0}) %}", "care", "makeup_hours"),
        ("{{ patient.clear() }}", "patient", "first_name"),
        ("{% set _ = links.pop('unsubscribe') %}", "links", "unsubscribe"),
        ("{{ patient|attr('clear')() }}", "patient", "first_name"),
    ],
)
def test_mutating_payloads_never_execute(payload: str, section: str, key: str) -> None:
    context = make_context(simple_step(), care={"makeup_hours": 24})
    before = context[section][key]
    with pytest.raises(RenderError, match="unsafe"):
        render_full(one_template(payload), "t.mjml", "S", "P", context)
    assert context[section][key] == before


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("{{ nope }}", "'nope' is undefined"),
        ("{{ patient.middle_name }}", "middle_name"),
        ("{{ care.makeup_days }}", "makeup_days"),
    ],
)
def test_undefined_variables_raise_render_error_naming_them(payload: str, fragment: str) -> None:
    with pytest.raises(RenderError) as info:
        render_plain(one_template(payload))
    assert "'t.mjml'" in str(info.value)
    assert "UndefinedError" in str(info.value)
    assert fragment in str(info.value)


def test_undefined_variable_in_subject_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="'oops' is undefined"):
        render_full(one_template("x"), "t.mjml", "Hi {{ oops }}", "P", make_context(simple_step()))


def test_syntax_error_names_the_line() -> None:
    source = "<mjml>\n<mj-body>\n{{ }}\n</mj-body>\n</mjml>"
    templates = TemplateSet.from_sources({"t.mjml": source})
    with pytest.raises(RenderError) as info:
        render_plain(templates)
    assert "TemplateSyntaxError (line 3)" in str(info.value)


@pytest.mark.parametrize(
    "source",
    [
        "<mjml><mj-body><mj-section>",
        "not MJML at all",
        "<mj-body></mj-body>",
        '<mjml><mj-body><mj-text align="left>x</mj-text></mj-body></mjml>',
    ],
    ids=["unclosed", "plain-text", "no-mjml-root", "unclosed-attribute"],
)
def test_invalid_mjml_raises_render_error(source: str) -> None:
    templates = TemplateSet.from_sources({"t.mjml": source})
    with pytest.raises(RenderError) as info:
        render_plain(templates)
    assert str(info.value).startswith("template 't.mjml': invalid MJML:")


def test_huge_output_is_refused() -> None:
    with pytest.raises(
        RenderError, match=r"more than 1000000 characters|would build a value over 1000000"
    ):
        render_plain(one_template("{{ 'a' * 1000001 }}"))


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ range(10 ** 9)|list|length }}", "range would build a value over"),
        ("{{ '{0}'.format_map({}) }}", "IndexError"),
    ],
    ids=["zero-division", "big-range", "format-map-index"],
)
def test_runtime_errors_in_templates_are_render_errors(payload: str, fragment: str) -> None:
    with pytest.raises(RenderError) as info:
        render_plain(one_template(payload))
    assert str(info.value).startswith("template 't.mjml': ")
    assert fragment in str(info.value)


# ---- autoescape --------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize("use_renderer", [False, True], ids=["render_full", "Renderer"])
def test_script_name_is_escaped_in_html_and_literal_in_text_and_subject(
    spec: CampaignSpec, templates: TemplateSet, use_renderer: bool
) -> None:
    step = step_named(spec, "day-0")
    subject = "{{ patient.first_name }}: " + step.subject
    context = make_context(step, care=spec.variables, first_name=SCRIPT)
    if use_renderer:
        renderer = Renderer()
        renderer.render(
            templates,
            step.template,
            subject,
            step.preheader,
            make_context(step, care=spec.variables),
        )
        result = renderer.render(templates, step.template, subject, step.preheader, context)
    else:
        result = render_full(templates, step.template, subject, step.preheader, context)

    assert "<script" not in result.html.lower()
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;," in result.html
    assert f"<title>&lt;script&gt;alert(1)&lt;/script&gt;: {step.subject}</title>" in result.html
    assert f"Hi {SCRIPT}," in result.text.splitlines()
    assert "&lt;" not in result.text
    assert result.subject == f"{SCRIPT}: {step.subject}"


def test_ampersand_and_quotes_are_escaped_once(spec: CampaignSpec, templates: TemplateSet) -> None:
    step = step_named(spec, "day-0")
    context = make_context(step, care=spec.variables, first_name='Tom & "Jo" O\'Neil')
    result = render_full(templates, step.template, step.subject, step.preheader, context)
    assert "Hi Tom &amp; &#34;Jo&#34; O&#39;Neil," in result.html
    assert "&amp;amp;" not in result.html
    assert 'Hi Tom & "Jo" O\'Neil,' in result.text


# ---- plain-text part ---------------------------------------------------------------------------


def test_text_part_is_real_plain_text(spec: CampaignSpec, templates: TemplateSet) -> None:
    step = step_named(spec, "day-1")
    result = render_step(spec, templates, step)
    text = result.text
    lines = [line for line in text.splitlines() if line.strip()]
    for sentence in [
        "Hi Alex,",
        "It is one day since your treatment. Here is what changes now.",
        "Put it on every day for 14 days.",
        "Over the next day or two, watch for tingling or burning, then a group of small "
        "blisters or sores, especially near your lips.",
        EMERGENCY_LINE.format(number="911"),
        "Opening hours: Monday to Friday, 9am to 5pm",
        "The team at Riverside Skin Clinic",
    ]:
        assert sentence in text, sentence
    assert HTML_TAG.search(text) is None, HTML_TAG.search(text)
    assert "mj-" not in text and "&nbsp;" not in text and "&amp;" not in text
    assert "{{" not in text and "{%" not in text
    assert lines[0] != step.preheader
    assert step.preheader not in text
    assert lines[0] == "Riverside Skin Clinic"
    assert "https://dripcare.example/x/tok123/unsubscribe" in text
    assert text.endswith("\n") and not text.endswith("\n\n")


@pytest.mark.parametrize("step_key", ["day-0", "day-3", "day-7", "day-14", "day-28", "day-42"])
def test_preheader_is_not_the_first_line_of_any_default_step(
    spec: CampaignSpec, templates: TemplateSet, step_key: str
) -> None:
    step = step_named(spec, step_key)
    result = render_step(spec, templates, step)
    first = next(line for line in result.text.splitlines() if line.strip())
    assert first == "Riverside Skin Clinic"
    assert step.preheader not in result.text
    assert f">{step.preheader}</div>" in result.html  # it is still in the HTML, hidden


@pytest.mark.parametrize(
    "preheader", ["1. Start here today", "- Read this first", "Tom & Jerry <3", "Hi *you*"]
)
def test_markdown_looking_preheader_is_still_dropped(
    spec: CampaignSpec, templates: TemplateSet, preheader: str
) -> None:
    step = step_named(spec, "day-0")
    result = render_step(spec, templates, step, preheader)
    first = next(line for line in result.text.splitlines() if line.strip())
    assert first == "Riverside Skin Clinic"
    assert result.preheader == preheader


@pytest.mark.parametrize(
    "payload",
    [
        "{{ (['a' * 999999] * 999999)|join }}",
        "{{ (['a' * 999999] * 999999)|join(',') }}",
        "{{ ','.join(['a' * 999999] * 999999) }}",
        "{{ ('a' * 999999).replace('a', 'a' * 999999) }}",
        "{{ ('a' * 999999)|replace('a', 'aaaa') }}",
        "{{ 'x'.center(10 ** 12) }}",
        "{{ 'x'|center(10 ** 12) }}",
        "{{ 'x'.zfill(999999999) }}",
        "{{ '%999999999d' % 1 }}",
        "{{ '%*d' % (999999999, 1) }}",
        "{{ '%999999999d'|format(1) }}",
        "{{ '{:999999999}'.format(1) }}",
        "{{ 'x'|indent(999999999) }}",
    ],
    ids=lambda p: p[3:40],
)
def test_one_step_memory_bombs_are_refused_before_they_run(payload: str) -> None:
    """A single C call (join, replace, a format width) cannot be interrupted by the deadline."""
    with pytest.raises(RenderError, match=r"would build a value over 1000000 characters"):
        render_plain(one_template(payload))


ORDINARY_OPERATIONS = {  # what each renders to, in the text part
    "{{ ['a', 'b']|join(', ') }}": "a, b",
    "{{ 'a b'.replace('a', 'c') }}": "c b",
    "{{ '%d days'|format(3) }}": "3 days",
    "{{ '%s and %s' % ('a', 'b') }}": "a and b",
    "{{ 'x'|center(9) }}": "x",
    "{% for i in range(3) %}{{ i }}{% endfor %}": "012",
}


@pytest.mark.parametrize("payload", list(ORDINARY_OPERATIONS))
def test_ordinary_sized_operations_still_work(payload: str) -> None:
    rendered = render_plain(one_template(payload))
    assert rendered.text.strip() == ORDINARY_OPERATIONS[payload]


def test_a_loop_past_the_deadline_stops_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dripcare.content.sandbox.MAX_RENDER_SECONDS", 0.0)
    payload = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderError) as info:
        render_plain(one_template(payload))
    assert "RenderTimeout" in str(info.value)
    assert "rendering took longer than 0 seconds" in str(info.value)


def test_preheader_is_hidden_by_layout_not_by_text_colour() -> None:
    """White 1px text on white is what spam filters call hidden text (HTML_FONT_LOW_CONTRAST)."""
    source = (
        "<mjml><mj-head><mj-preview>{{ step.preheader }}</mj-preview></mj-head>"
        "<mj-body><mj-section><mj-column><mj-text>Visible</mj-text></mj-column></mj-section>"
        "</mj-body></mjml>"
    )
    step = simple_step(preheader="Your first week")
    templates = TemplateSet.from_sources({"t.mjml": source})
    rendered = render_full(templates, "t.mjml", "S", "Your first week", make_context(step))
    (hidden,) = re.findall(r'<div style="([^"]*)">Your first week</div>', rendered.html)
    assert "display:none" in hidden and "mso-hide:all" in hidden
    assert "color" not in hidden and "font-size" not in hidden
    assert "Your first week" not in rendered.text
