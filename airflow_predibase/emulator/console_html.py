"""HTML for the demo console: a page, a settings table, a timeline and a loss curve in SVG.

Every piece of text that came from a request (names, descriptions, errors) goes through
`esc`; nothing here runs script, so the page works under a `default-src 'none'` policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2330}
a{color:#2457c5}h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse}td,th{padding:.25rem .8rem .25rem 0;text-align:left;
vertical-align:top}th{color:#5b6475;font-weight:500}
.status{display:inline-block;padding:.1rem .55rem;border-radius:.7rem;background:#e7eaf0}
.ok{background:#d8f1de}.bad{background:#f8dcdc}.note{color:#5b6475}
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def show(value: Any) -> str:
    """A value from a resource's JSON, readable and escaped."""
    if value is None or value == [] or value == {}:
        return "&mdash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return f"<code>{esc(json.dumps(value, ensure_ascii=False))}</code>"
    return esc(value)


def page(title: str, body: str, *, refresh: bool = False) -> str:
    """A whole document; `refresh` reloads it every 2 s (a resource still on its way)."""
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"{meta}<title>{esc(title)} - Predibase emulator</title>"
        f"<style>{_STYLE}</style></head><body>"
        '<p class="note"><a href="/console">Predibase emulator console</a> '
        "(a local, read-only demo)</p>"
        f"{body}</body></html>"
    )


def status_badge(status: str, *, success: bool, failure: bool) -> str:
    css = "status ok" if success else "status bad" if failure else "status"
    return f'<span class="{css}">{esc(status)}</span>'


def table(rows: Iterable[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{esc(key)}</th><td>{show(value)}</td></tr>" for key, value in rows)
    return f"<table>{cells}</table>"


def link_list(items: Sequence[tuple[str, str, str]]) -> str:
    """(href, text, status) rows as a list; `href` is built by us, the text is escaped."""
    if not items:
        return '<p class="note">none</p>'
    rows = "".join(
        f'<li><a href="{esc(href)}">{esc(text)}</a> <span class="status">{esc(status)}</span></li>'
        for href, text, status in items
    )
    return f"<ul>{rows}</ul>"


def loss_svg(
    points: Sequence[tuple[int, float]], total_steps: int, latest: float | None = None
) -> str:
    """The training loss as an inline SVG line: x is the step (0 to total), y the loss;
    labelled with `latest`, the loss the job reports now (default: the last point's)."""
    width, height, pad = 520, 220, 40
    if not points:
        return '<p class="note">No training step yet.</p>'
    top = max(loss for _, loss in points) * 1.1 or 1.0
    span = max(total_steps, 1)

    def xy(step: int, loss: float) -> str:
        x = pad + (width - 2 * pad) * step / span
        y = height - pad - (height - 2 * pad) * loss / top
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(step, loss) for step, loss in points)
    last_step, last_loss = points[-1]
    if latest is not None:
        last_loss = latest
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="training loss by step">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#8a93a5"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#8a93a5"/>'
        f'<text x="{pad}" y="{height - pad + 16}" font-size="11">0</text>'
        f'<text x="{width - pad}" y="{height - pad + 16}" font-size="11" '
        f'text-anchor="end">step {span}</text>'
        f'<text x="{pad - 4}" y="{pad + 4}" font-size="11" text-anchor="end">{top:.2f}</text>'
        f'<polyline fill="none" stroke="#2457c5" stroke-width="2" points="{line}"/>'
        f'<text x="{width - pad}" y="{pad}" font-size="12" text-anchor="end">'
        f"loss {last_loss:.4f} at step {last_step}</text></svg>"
    )
