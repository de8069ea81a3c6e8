"""Finding the line of an MJML mistake, alone and in the checks run before a template is saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripcare.content import campaign_editing as edit
from dripcare.content.campaigns import load_campaign_dir
from dripcare.content.mjml_structure import find_problem
from dripcare.content.template_checks import check_spec

SHIPPED = Path(__file__).parents[1] / "templates" / "emails" / "microneedling"
FRAGMENT = """<mj-section>
  <mj-column>
    <mj-text>
      <p>Hello {{ patient.first_name }}</p>
    </mj-text>
    {{ BROKEN }}
  </mj-column>
</mj-section>
"""


def fragment(broken: str) -> str:
    return FRAGMENT.replace("{{ BROKEN }}", broken)


@pytest.mark.parametrize(
    ("source", "line", "column", "says"),
    [
        (fragment("<mj-divider>"), 6, 5, "<mj-divider> is never closed; add </mj-divider> before"),
        (fragment("<mj-text>Hi"), 6, 5, "<mj-text> is never closed; add </mj-text>"),
        (
            fragment("</mj-wrapper>"),
            6,
            5,
            "</mj-wrapper> does not match <mj-column> opened on line 2",
        ),
        (
            fragment('<mj-colum padding="0" />'),
            6,
            5,
            "<mj-colum> is not an MJML element; did you mean <mj-column>?",
        ),
        (fragment("<mj-spacer height= />"), 6, 16, 'height= has no value; write height="…"'),
        (
            fragment("<mj-spacer height=20px />"),
            6,
            16,
            'the value of height must be in quotes: height="…"',
        ),
        (fragment('<mj-spacer height="20px />'), 6, 16, "the value of height has no closing quote"),
        ("<mjml>\n  <mj-body>\n", 2, 3, "<mj-body> is never closed; add </mj-body>"),
        ("<mj-section>\n</mj-section>\n</mj-section>", 3, 1, "</mj-section> closes nothing"),
        ("<mj-section>\n  <!-- <mj-column>\n", 2, 3, "comment <!-- is never closed"),
    ],
)
def test_each_mistake_is_found_at_its_line(source: str, line: int, column: int, says: str) -> None:
    found = find_problem(source)
    assert found is not None
    assert (found.line, found.column) == (line, column), found
    assert says in found.message


@pytest.mark.parametrize(
    "source",
    [
        FRAGMENT.replace("{{ BROKEN }}", ""),
        (
            '<mj-section padding="{{ pad }}" {% if x %}css-class="a"{% endif %}>'
            "<mj-column /></mj-section>"
        ),
        "<mj-text>\n  <p>A <b>tag</b> that is <mj-not-read> inside text</p>\n</mj-text>",
        "<!-- <mj-unknown> in a comment -->\n{# <mj-section> in a Jinja comment #}",
        "<mj-raw><div><mj-whatever></div></mj-raw>",
    ],
)
def test_sound_markup_has_no_problem(source: str) -> None:
    assert find_problem(source) is None


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.mjml")), ids=lambda p: p.name)
def test_the_shipped_templates_have_no_problem(path: Path) -> None:
    assert find_problem(path.read_text()) is None


def test_the_shipped_campaign_passes_the_checks() -> None:
    assert check_spec(load_campaign_dir(SHIPPED)) == []


def test_a_check_names_the_file_line_and_keeps_mrmls_words() -> None:
    spec = load_campaign_dir(SHIPPED)
    source = spec.sources["day-03.mjml"]
    line = source.splitlines().index("      <mj-column>") + 1
    broken_source = source.replace("      <mj-column>", "      <mj-column padding=>", 1)
    broken = edit.set_source(spec, "day-03.mjml", broken_source)

    problems = [p for p in check_spec(broken) if p.kind == "markup"]

    assert [(p.where, p.line) for p in problems] == [("day-03.mjml", line)]
    assert "padding= has no value" in problems[0].message
    assert "MRML says: unable to parse next template" in problems[0].message


def test_a_problem_in_the_layout_is_reported_at_the_layouts_line() -> None:
    spec = load_campaign_dir(SHIPPED)
    layout = spec.sources["_layout.mjml"]
    broken = edit.set_source(spec, "_layout.mjml", layout.replace("</mj-head>", "</mj-haed>"))
    line = layout.splitlines().index("  </mj-head>") + 1

    problems = [p for p in check_spec(broken) if p.kind == "markup"]

    assert [(p.where, p.line) for p in problems] == [("_layout.mjml", line)]
    assert "</mj-haed> does not match <mj-head>" in problems[0].message
