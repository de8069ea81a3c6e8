"""µs per email body of `quoted_printable.encode` against encoding the whole body at once.

    .venv/bin/python bench/quoted_printable.py

No services. Renders the first steps of the default campaign with sample data, makes 240
bodies of each with other names and links (as the recipients of one step differ), checks that
both encoders give the same bytes, and times each over all of them.
"""

from __future__ import annotations

import binascii
import timeit
from collections.abc import Callable

from dripcare.content import campaigns, previews
from dripcare.sending import quoted_printable

NAMES = ["Al", "Bea", "Chloé", "Dimitrios", "Eve", "Fátima", "Gus", "Hanna-Lena", "Io", "Jürgen"]


def whole_text(text: str) -> bytes:
    """The encoder before the cache."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def per_body_us(encoder: Callable[[str], bytes], bodies: list[str], number: int = 20) -> float:
    seconds = timeit.timeit(lambda: [encoder(b) for b in bodies], number=number)
    return seconds / number / len(bodies) * 1e6


def main() -> None:
    spec = campaigns.load_campaign_dir(campaigns.default_campaign_dirs()[0])
    for step in spec.steps[:3]:
        rendered = previews.render_step(spec, step.key, None)
        for kind, body in (("html", rendered.html), ("text", rendered.text)):
            bodies = [
                body.replace("Alex", name).replace("https://", f"https://t{i}x")
                for i, name in enumerate(NAMES * 24)
            ]
            assert all(quoted_printable.encode(b) == whole_text(b) for b in bodies)
            whole = per_body_us(whole_text, bodies)
            cached = per_body_us(quoted_printable.encode, bodies)
            print(f"{step.key:8s} {kind}, {len(body):6,d} chars: whole {whole:6.1f} us", end="")
            print(f", cached {cached:6.1f} us")


if __name__ == "__main__":
    main()
