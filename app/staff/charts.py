"""Charts as hand-written SVG, rendered on the server: no script, no library, no CDN.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what
it shows, a ``viewBox`` so it scales to the width of a phone, and text large enough to read
there. Pages put the same numbers in a table beside it; the chart is for the eye.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 320
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 20, 40


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``: an axis top a
    person can read."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Point:
    day: date
    amount: int  # the day's net amount (minor units)
    cumulative: int


def raised_chart(points: Sequence[Point], *, goal: int, money: Callable[[int], str],
                 title: str, chart_id: str = "raised-chart") -> Markup:
    """Money raised per day (bars), the running total (a line) and the goal (a dashed line)."""
    top = nice_ceiling(max([goal, *(p.cumulative for p in points), *(p.amount for p in points),
                            1]))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    n = max(1, len(points))
    slot = plot_w / n

    def y(value: int) -> float:
        return PAD_TOP + plot_h - plot_h * max(0, value) / top

    parts: list[str] = []
    # Grid lines and axis labels at quarters of the top.
    for i in range(5):
        value = top * i // 4
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
                     f'y1="{_f(y(value))}" y2="{_f(y(value))}"/>')
        parts.append(f'<text class="axis" x="{PAD_LEFT - 6}" y="{_f(y(value) + 4)}" '
                     f'text-anchor="end">{escape(money(value))}</text>')
    for i, p in enumerate(points):
        if p.amount > 0:
            bar_h = plot_h * p.amount / top
            parts.append(f'<rect class="bar-day" x="{_f(PAD_LEFT + i * slot + slot * 0.15)}" '
                         f'y="{_f(y(p.amount))}" width="{_f(max(slot * 0.7, 1))}" '
                         f'height="{_f(bar_h)}"><title>{escape(p.day.isoformat())}: '
                         f'{escape(money(p.amount))}</title></rect>')
    if points:
        line = " ".join(f"{_f(PAD_LEFT + (i + 0.5) * slot)},{_f(y(p.cumulative))}"
                        for i, p in enumerate(points))
        parts.append(f'<polyline class="line-total" points="{line}"/>')
        # A handful of date labels, never crowded: first, last and evenly between.
        step = max(1, round(n / 5))
        shown = sorted({*range(0, n, step), n - 1})
        for i in shown:
            if i != n - 1 and n - 1 - i < step / 2:
                continue
            parts.append(f'<text class="axis" x="{_f(PAD_LEFT + (i + 0.5) * slot)}" '
                         f'y="{HEIGHT - PAD_BOTTOM + 18}" text-anchor="middle">'
                         f'{points[i].day.strftime("%-d %b")}</text>')
    goal_y = _f(y(goal))
    parts.append(f'<line class="line-goal" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
                 f'y1="{goal_y}" y2="{goal_y}"/>')
    parts.append(f'<text class="goal-label" x="{WIDTH - PAD_RIGHT}" y="{_f(y(goal) - 6)}" '
                 f'text-anchor="end">Goal {escape(money(goal))}</text>')

    total = points[-1].cumulative if points else 0
    best = max(points, key=lambda p: p.amount, default=None)
    desc = (f"{len(points)} days from {points[0].day:%-d %B %Y} to {points[-1].day:%-d %B %Y}. "
            if points else "No days yet. ")
    desc += f"Raised {money(total)} of a {money(goal)} goal."
    if best and best.amount > 0:
        desc += f" The best day was {best.day:%-d %B} with {money(best.amount)}."
    svg = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'preserveAspectRatio="xMidYMid meet" aria-labelledby="{chart_id}-title '
           f'{chart_id}-desc" id="{chart_id}">'
           f'<title id="{chart_id}-title">{escape(title)}</title>'
           f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
           + "".join(parts) + "</svg>")
    return Markup(svg)


def bar_chart(items: Sequence[tuple[str, int]], *, money: Callable[[int], str], title: str,
              chart_id: str) -> Markup:
    """Horizontal bars, one per labelled amount, largest first as given."""
    row_h, label_w = 32, 150
    height = PAD_TOP + row_h * max(1, len(items)) + 8
    top = nice_ceiling(max([amount for _, amount in items] + [1]))
    plot_w = WIDTH - label_w - PAD_RIGHT - 110
    parts = []
    for i, (label, amount) in enumerate(items):
        y = PAD_TOP + i * row_h
        width = plot_w * max(0, amount) / top
        shown = label if len(label) <= 20 else label[:19] + "…"
        parts.append(f'<text class="axis" x="{label_w - 8}" y="{y + 20}" text-anchor="end">'
                     f'{escape(shown)}</text>')
        parts.append(f'<rect class="bar-source" x="{label_w}" y="{y + 6}" '
                     f'width="{_f(max(width, 1))}" height="{row_h - 12}"/>')
        parts.append(f'<text class="value" x="{_f(label_w + width + 6)}" y="{y + 20}">'
                     f'{escape(money(amount))}</text>')
    desc = "; ".join(f"{label}: {money(amount)}" for label, amount in items) or "No data yet."
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" id="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>' + "".join(parts) + "</svg>")
