"""Charts as hand-written SVG, rendered on the server: no script, no library, no CDN.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what
it shows, and a ``viewBox`` so it scales to the width of a phone. Pages put the same numbers in a
table beside it; the chart is for the eye.

Nothing may be cut off at the edges, and SVG has no layout: a label is as wide as the font makes
it, and the chart must leave room for it before the browser draws it. ``text_width`` estimates
that width, erring wide, and each chart sizes its margins and label columns from the labels it
actually has (the y axis from its widest tick label, the bar chart from its names and values).
Names too long for their column wrap onto a second line and are then cut with "…"; the full
name is the row's ``<title>`` (a tooltip, and what a screen reader reads) and is in ``<desc>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 320
PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 16, 28, 44
EDGE = 4  # space kept free between any label and the chart's edge
GAP = 8  # between a label and what it labels
# The largest size staff.css gives chart text (.chart .axis, .value, .goal-label), in viewBox
# units: 20 on a narrow screen (about 11 px on a phone 390 px wide, where the 640-unit viewBox
# is drawn about 360 px wide), 15 on a wider one. Room is left for the larger.
FONT_PX = 20
LINE_PX = 24  # a line of a wrapped label
BASELINE = 7  # from a text's middle down to its baseline

# Advance widths in em, rounded up from DejaVu Sans (Debian's default sans-serif, and wider
# than Helvetica, Arial or Roboto), so that an estimate is never short of the real width.
_NARROW = frozenset(" .,:;'!|()[]{}ijlrtfIJ·")
_WIDE = frozenset("mwMW@%…—₪")


def text_width(text: str, size: float = FONT_PX) -> float:
    """The estimated width of ``text`` drawn at ``size`` in a sans-serif font, erring wide:
    0.4 em for narrow marks and letters, 0.64 em for digits, lowercase and currency signs, 0.8
    em for capitals, a full em for m, w, %, … and for any script not listed (Arabic, Hebrew,
    CJK: a safe upper bound)."""
    ems = 0.0
    for ch in text:
        if ch in _NARROW:
            ems += 0.4
        elif ch in _WIDE:
            ems += 1.0
        elif ch.isupper():
            ems += 0.8
        elif ch.isascii() or ch in "€£¥¢":
            ems += 0.64
        else:
            ems += 1.0
    return ems * size


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


def axis_ticks(low: int, high: int, *, unit: int = 1, count: int = 4) -> list[int]:
    """About ``count`` steps from at or below ``low`` to at or above ``high``, each a nice
    number (``nice_ceiling``) of whole ``unit``\\s, so that every label is a round amount of
    money (``unit`` is one dollar in cents: 100)."""
    low, high = min(low, 0), max(high, 0)
    if high == low:
        high = low + unit
    step = unit * nice_ceiling(math.ceil((high - low) / count / unit))
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    return list(range(first, last + step, step))


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _short_day(day: date) -> str:
    return f"{day.day} {day:%b}"


def _long_day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class Point:
    day: date
    amount: int  # the day's net amount (minor units)
    cumulative: int


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart with a y axis of money and one slot per day along x."""

    ticks: list[int]
    left: float  # x of the plot's left edge: the widest tick label fits before it
    slots: int

    @property
    def low(self) -> int:
        return self.ticks[0]

    @property
    def high(self) -> int:
        return self.ticks[-1]

    @property
    def plot_w(self) -> float:
        return WIDTH - PAD_RIGHT - self.left

    @property
    def slot(self) -> float:
        return self.plot_w / max(1, self.slots)

    def x(self, i: int) -> float:
        """The centre of day ``i``'s slot."""
        return self.left + (i + 0.5) * self.slot

    def y(self, value: int) -> float:
        plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
        return PAD_TOP + plot_h * (self.high - value) / (self.high - self.low)


def _frame(values: Sequence[int], slots: int, money: Callable[[int], str],
           unit: int) -> _Frame:
    ticks = axis_ticks(min(values, default=0), max(values, default=0), unit=unit)
    widest = max(text_width(money(t)) for t in ticks)
    return _Frame(ticks=ticks, left=math.ceil(EDGE + widest + GAP), slots=slots)


def _axes(frame: _Frame, points: Sequence[Point], money: Callable[[int], str],
          day_label: Callable[[date], str]) -> list[str]:
    """Grid lines with their money labels, and a handful of day labels along the bottom."""
    parts = []
    for value in frame.ticks:
        y = _f(frame.y(value))
        parts.append(f'<line class="grid{" zero" if value == 0 else ""}" x1="{_f(frame.left)}" '
                     f'x2="{WIDTH - PAD_RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="axis" x="{_f(frame.left - GAP)}" '
                     f'y="{_f(frame.y(value) + BASELINE)}" text-anchor="end">'
                     f'{escape(money(value))}</text>')
    n = len(points)
    if n:
        # First, last and evenly between, never crowded, each kept inside the chart.
        step = max(1, round(n / 5))
        for i in sorted({*range(0, n, step), n - 1}):
            if i != n - 1 and n - 1 - i < step / 2:
                continue
            label = day_label(points[i].day)
            half = text_width(label) / 2
            x = min(max(frame.x(i), EDGE + half), WIDTH - EDGE - half)
            parts.append(f'<text class="axis" x="{_f(x)}" y="{HEIGHT - PAD_BOTTOM + 26}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    return parts


def _svg(parts: Sequence[str], *, chart_id: str, title: str, desc: str,
         height: int = HEIGHT) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'preserveAspectRatio="xMidYMid meet" aria-labelledby="{chart_id}-title '
        f'{chart_id}-desc" id="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>' + "".join(parts) + "</svg>")


def _span(points: Sequence[Point], long_day: Callable[[date], str]) -> str:
    if not points:
        return "No days yet. "
    return (f"{len(points)} day{'' if len(points) == 1 else 's'} from "
            f"{long_day(points[0].day)} to {long_day(points[-1].day)}. ")


def daily_chart(points: Sequence[Point], *, money: Callable[[int], str], title: str,
                chart_id: str = "daily-chart", unit: int = 1,
                day_label: Callable[[date], str] = _short_day,
                long_day: Callable[[date], str] = _long_day) -> Markup:
    """Money raised each day, as bars on an axis of their own (a day's gifts are a sliver of a
    campaign's goal, and would not show on its scale). A day whose refunds outweigh its gifts
    is a bar below zero."""
    frame = _frame([p.amount for p in points], len(points), money, unit)
    parts = _axes(frame, points, money, day_label)
    zero = frame.y(0)
    width = _f(max(frame.slot * 0.7, 1))
    for i, p in enumerate(points):
        if p.amount == 0:
            continue
        top, bottom = (frame.y(p.amount), zero) if p.amount > 0 else (zero, frame.y(p.amount))
        parts.append(f'<rect class="bar-day{" bar-negative" if p.amount < 0 else ""}" '
                     f'x="{_f(frame.x(i) - frame.slot * 0.35)}" y="{_f(top)}" width="{width}" '
                     f'height="{_f(max(bottom - top, 1))}"><title>{escape(long_day(p.day))}: '
                     f'{escape(money(p.amount))}</title></rect>')
    desc = _span(points, long_day)
    best = max(points, key=lambda p: p.amount, default=None)
    if best and best.amount > 0:
        desc += f"The best day was {long_day(best.day)} with {money(best.amount)}."
    else:
        desc += "No money raised yet."
    return _svg(parts, chart_id=chart_id, title=title, desc=desc)


def total_chart(points: Sequence[Point], *, goal: int, money: Callable[[int], str], title: str,
                chart_id: str = "total-chart", unit: int = 1,
                day_label: Callable[[date], str] = _short_day,
                long_day: Callable[[date], str] = _long_day) -> Markup:
    """The running total (a line) climbing towards the goal (a dashed line)."""
    frame = _frame([goal, *(p.cumulative for p in points)], len(points), money, unit)
    parts = _axes(frame, points, money, day_label)
    if points:
        line = " ".join(f"{_f(frame.x(i))},{_f(frame.y(p.cumulative))}"
                        for i, p in enumerate(points))
        parts.append(f'<polyline class="line-total" points="{line}"/>')
    goal_y = frame.y(goal)
    parts.append(f'<line class="line-goal" x1="{_f(frame.left)}" x2="{WIDTH - PAD_RIGHT}" '
                 f'y1="{_f(goal_y)}" y2="{_f(goal_y)}"/>')
    parts.append(f'<text class="goal-label" x="{WIDTH - PAD_RIGHT}" '
                 f'y="{_f(max(goal_y - 6, FONT_PX + EDGE))}" text-anchor="end">'
                 f'Goal {escape(money(goal))}</text>')
    total = points[-1].cumulative if points else 0
    desc = _span(points, long_day) + f"Raised {money(total)} of a {money(goal)} goal."
    return _svg(parts, chart_id=chart_id, title=title, desc=desc)


def wrap_label(label: str, width: float, *, lines: int = 2) -> list[str]:
    """``label`` broken at spaces into at most ``lines`` lines of at most ``width`` (as
    ``text_width`` estimates it); the last line is cut with "…" when the rest does not fit, and
    a single word too long for a line is cut too."""
    words, out = label.split(), []
    while words and len(out) < lines:
        line = words.pop(0)
        while words and text_width(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        if text_width(line) > width or (words and len(out) == lines - 1):
            while line and text_width(line + "…") > width:
                line = line[:-1].rstrip()
            line += "…"
            words = []
        out.append(line)
    return out or [""]


def bar_chart(items: Sequence[tuple[str, int]], *, money: Callable[[int], str], title: str,
              chart_id: str) -> Markup:
    """Horizontal bars, one per labelled amount, in the order given. Names take the room the
    longest needs, up to two fifths of the width; longer ones wrap onto two lines, then are cut
    with "…", the full name in the row's ``<title>``. Each bar's value follows it."""
    values = [money(amount) for _, amount in items]
    value_w = max([text_width(v) for v in values] + [0])
    label_room = WIDTH * 0.4
    label_w = min(label_room, max([text_width(label) for label, _ in items] + [40]))
    left = math.ceil(EDGE + label_w + GAP)
    plot_w = WIDTH - PAD_RIGHT - left - GAP - value_w
    top = nice_ceiling(max([amount for _, amount in items] + [1]))
    parts, y = [], PAD_TOP / 2
    for (label, amount), value in zip(items, values, strict=True):
        lines = wrap_label(label, label_w)
        row_h = LINE_PX * len(lines) + 16
        middle = y + row_h / 2
        first = middle + BASELINE - (len(lines) - 1) * LINE_PX / 2
        spans = "".join(f'<tspan x="{left - GAP}" y="{_f(first + k * LINE_PX)}">'
                        f'{escape(line)}</tspan>' for k, line in enumerate(lines))
        width = plot_w * max(0, amount) / top
        parts.append(
            f'<g class="bar-row"><title>{escape(label)}: {escape(value)}</title>'
            f'<text class="axis" text-anchor="end">{spans}</text>'
            f'<rect class="bar-source" x="{left}" y="{_f(middle - 12)}" '
            f'width="{_f(max(width, 1))}" height="24"/>'
            f'<text class="value" x="{_f(left + max(width, 1) + GAP)}" '
            f'y="{_f(middle + BASELINE)}">'
            f'{escape(value)}</text></g>')
        y += row_h
    height = math.ceil(y + PAD_TOP / 2) if items else PAD_TOP + 40
    desc = "; ".join(f"{label}: {value}" for (label, _), value in zip(items, values,
                                                                       strict=True))
    return _svg(parts, chart_id=chart_id, title=title, desc=desc or "No data yet.",
                height=height)
