"""Bar charts as inline SVG, drawn on the server: no script, nothing fetched, and readable
without CSS. Each chart is an image with a title and a description for screen readers; the
page carries the numbers themselves in a table as well.

The viewBox is about as wide as a phone's column, so at 375 px the text is drawn near its
nominal size and on a desktop it grows a little; the SVG scales to its container's width.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 30, 6, 8, 22  # room for the axis labels


@dataclass(frozen=True)
class Chart:
    key: str  # css class and id prefix, e.g. "sent"
    title: str  # "Emails sent"
    days: list[date]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def description(self) -> str:
        if not self.total:
            return f"None in the {len(self.days)} days from {_day(self.days[0])}."
        peak = max(range(len(self.counts)), key=lambda i: (self.counts[i], i))
        return (
            f"{self.total} in the {len(self.days)} days from {_day(self.days[0])} to "
            f"{_day(self.days[-1])}; the most, {self.counts[peak]}, on {_day(self.days[peak])}."
        )

    def svg(self) -> Markup:
        """The chart: one bar per day, a scale from 0 to a round maximum, first and last day."""
        top = _round_up(max(self.counts, default=0))
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        step = plot_w / len(self.counts)
        gap = min(step * 0.2, 2)
        bars = []
        for i, (day, n) in enumerate(zip(self.days, self.counts, strict=True)):
            h = plot_h * n / top
            x, y = LEFT + i * step + gap / 2, TOP + plot_h - h
            bars.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - gap:.1f}" height="{h:.1f}">'
                f"<title>{_day(day)}: {n}</title></rect>"
            )
        base, mid = TOP + plot_h, TOP + plot_h / 2
        ident = f"chart-{escape(self.key)}"
        return Markup(
            f'<svg class="chart chart-{escape(self.key)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-labelledby="{ident}-title {ident}-desc" '
            f'preserveAspectRatio="xMidYMid meet" focusable="false">'
            f'<title id="{ident}-title">{escape(self.title)}</title>'
            f'<desc id="{ident}-desc">{escape(self.description())}</desc>'
            f'<g class="grid"><line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP}" y2="{TOP}"/>'
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{mid}" y2="{mid}"/>'
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/></g>'
            f'<g class="axis" text-anchor="end"><text x="{LEFT - 4}" y="{TOP + 4}">{top}</text>'
            f'<text x="{LEFT - 4}" y="{base}">0</text></g>'
            f'<g class="axis"><text x="{LEFT}" y="{HEIGHT - 6}">{_day(self.days[0])}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
            f"{_day(self.days[-1])}</text></g>"
            f'<g class="bars">{"".join(bars)}</g></svg>'
        )


def _day(day: date) -> str:
    return f"{day.day} {day:%b}"


def _round_up(peak: int) -> int:
    """A round top for the scale: 1, 2, 5, 10, 20, 50, … at least `peak` (and at least 1)."""
    top = 1
    while top < peak:
        for factor in (2, 5 / 2, 2):
            top = int(top * factor)
            if top >= peak:
                break
    return top
