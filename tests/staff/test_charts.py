"""The server-side SVG charts: accessible, scalable, and nothing cut off at their edges (each
label inside the viewBox by the estimate of its width, an estimate checked against the real
font), daily bars visible whatever the goal."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest

from app.staff.charts import (
    EDGE,
    HEIGHT,
    PAD_BOTTOM,
    PAD_TOP,
    WIDTH,
    Point,
    axis_ticks,
    bar_chart,
    daily_chart,
    nice_ceiling,
    text_width,
    total_chart,
    wrap_label,
)

SVG = "{http://www.w3.org/2000/svg}"
PLOT_H = HEIGHT - PAD_TOP - PAD_BOTTOM
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}${abs(minor) // 100:,}"


def shekels(minor: int) -> str:
    return f"₪{minor // 100:,}"


def parse(markup) -> ElementTree.Element:
    namespaced = str(markup).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return ElementTree.fromstring(namespaced)


def series(amounts: list[int], start: date = date(2026, 11, 1)) -> list[Point]:
    points, total = [], 0
    for i, amount in enumerate(amounts):
        total += amount
        points.append(Point(start + timedelta(days=i), amount, total))
    return points


def view_box(svg) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in svg.get("viewBox").split())
    return x, y, w, h


def text_extent(element, text: str) -> tuple[float, float]:
    """Where a text's estimated width puts its left and right ends, by its text-anchor."""
    x, width = float(element.get("x")), text_width(text)
    anchor = element.get("text-anchor", "start")
    if anchor == "end":
        return x - width, x
    if anchor == "middle":
        return x - width / 2, x + width / 2
    return x, x + width


def assert_every_label_inside(svg) -> None:
    _, _, width, _ = view_box(svg)
    for text in svg.iter(f"{SVG}text"):
        pieces = [(span, span.text) for span in text.iter(f"{SVG}tspan")] or [(text, text.text)]
        for element, content in pieces:
            if element is not text and element.get("text-anchor") is None:
                element.set("text-anchor", text.get("text-anchor", "start"))
            left, right = text_extent(element, content or "")
            assert left >= 0 and right <= width, (content, left, right)


def y_labels(svg) -> list:
    return [t for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"
            and t.get("class") == "axis"]


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 7, 11, 24, 26, 99, 101, 2_400_000)] == \
        [1, 1, 10, 20, 25, 50, 100, 200, 2_500_000]


def test_axis_ticks_are_round_amounts_of_whole_units():
    assert axis_ticks(0, 25_000_000, unit=100) == [0, 10_000_000, 20_000_000, 30_000_000]
    assert axis_ticks(0, 50_000, unit=100) == [0, 20_000, 40_000, 60_000]
    assert axis_ticks(-2_000, 50_000, unit=100) == [-20_000, 0, 20_000, 40_000, 60_000]
    assert axis_ticks(0, 0, unit=100) == [0, 100]  # no money yet: still an axis
    assert axis_ticks(0, 250, unit=100) == [0, 100, 200, 300]  # never $0.50 steps


@pytest.mark.parametrize("label", [
    "$250,000", "$12,500,000", "-$20,000", "₪250,000", "€1,000", "Goal $250,000",
    "Twenty years of independent reporting", "WWW MMM mmm www", "Illicit little lilies",
    "Ramadan 1448 AH", "Rosh Hashanah (Jewish New Year) 5788", "ראש השנה", "رمضان كريم",
    "newsletter", "(direct)", "Nov 25", "25 Nov", "Anonymous…",
])
def test_text_width_is_never_short_of_the_real_font(label):
    """The estimate against DejaVu Sans (the sans-serif the browser uses here, and wider than
    the usual system fonts), glyph by glyph."""
    ttlib = pytest.importorskip("fontTools.ttLib")
    if not DEJAVU.exists():
        pytest.skip("DejaVu Sans is not installed")
    font = ttlib.TTFont(DEJAVU)
    cmap, metrics = font.getBestCmap(), font["hmtx"].metrics
    units = font["head"].unitsPerEm
    real = sum(metrics[cmap.get(ord(ch), ".notdef")][0] for ch in label) / units * 15
    assert text_width(label, 15) >= real
    assert text_width(label, 15) <= real * 1.6 + 15  # an estimate, not a wild guess


def test_total_chart_is_accessible_scalable_svg():
    points = series([5000, 0, 12000, 3000])
    svg = parse(total_chart(points, goal=50_000, money=money, title="Raised <per> day"))
    assert svg.get("role") == "img" and svg.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}"
    assert svg.find(f"{SVG}title").text == "Raised <per> day"
    desc = svg.find(f"{SVG}desc").text
    assert "4 days from 1 November 2026 to 4 November 2026" in desc
    assert "Raised $200 of a $500 goal" in desc
    assert svg.find(f"{SVG}polyline") is not None
    assert any("Goal $500" in (t.text or "") for t in svg.iter(f"{SVG}text"))
    assert_every_label_inside(svg)


@pytest.mark.parametrize("goal, fmt, widest", [
    (25_000_000, money, "$300,000"), (1_250_000_000, money, "$15,000,000"),
    (25_000_000, shekels, "₪300,000")])
def test_the_y_axis_leaves_room_for_its_widest_label(goal, fmt, widest):
    """Before, the left margin was a fixed 64 units: "$250,000" lost its "$"."""
    svg = parse(total_chart(series([40_000, 10_000]), goal=goal, money=fmt, title="t",
                            unit=100))
    labels = y_labels(svg)
    assert widest in [t.text for t in labels]
    for label in labels:
        left, _ = text_extent(label, label.text)
        assert left >= EDGE, (label.text, left)
    plot_left = min(float(line.get("x1")) for line in svg.iter(f"{SVG}line"))
    assert plot_left >= EDGE + text_width(widest)
    assert_every_label_inside(svg)


def test_daily_bars_have_their_own_scale():
    """$400 days against a $250,000 goal: on the goal's scale the bars were under 2 units tall;
    on their own they fill the plot."""
    points = series([40_000, 0, 15_000, 22_500, 5_000])
    svg = parse(daily_chart(points, money=money, title="Each day", unit=100))
    bars = {r.find(f"{SVG}title").text: float(r.get("height")) for r in svg.iter(f"{SVG}rect")}
    assert len(bars) == 4  # no bar for the empty day
    tallest = max(bars.values())
    assert tallest >= PLOT_H * 0.6
    assert bars["3 November 2026: $150"] == pytest.approx(tallest * 15_000 / 40_000, abs=0.2)
    assert min(bars.values()) >= PLOT_H * 0.1
    desc = svg.find(f"{SVG}desc").text
    assert "The best day was 1 November 2026 with $400" in desc
    assert "$250,000" not in str(daily_chart(points, money=money, title="t", unit=100))
    assert_every_label_inside(svg)


def test_a_day_of_refunds_is_a_bar_below_zero():
    svg = parse(daily_chart(series([10_000, -3_000]), money=money, title="t", unit=100))
    negative = [r for r in svg.iter(f"{SVG}rect") if "bar-negative" in r.get("class")]
    assert len(negative) == 1
    zero = next(line for line in svg.iter(f"{SVG}line") if "zero" in line.get("class"))
    assert float(negative[0].get("y")) == pytest.approx(float(zero.get("y1")), abs=0.1)
    assert [t.text for t in y_labels(svg)] == ["-$50", "$0", "$50", "$100"]


def test_day_labels_are_written_by_the_given_formatter_and_stay_inside():
    points = series([100] * 60)
    svg = parse(daily_chart(points, money=money, title="t", unit=100,
                            day_label=lambda d: d.strftime("%d.%m.%Y"),
                            long_day=lambda d: d.isoformat()))
    bottom = [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert bottom[0] == "01.11.2026" and bottom[-1] == "30.12.2026"
    assert "from 2026-11-01 to 2026-12-30" in svg.find(f"{SVG}desc").text
    assert_every_label_inside(svg)


def test_wrap_label():
    assert wrap_label("Short", 200) == ["Short"]
    lines = wrap_label("Rosh Hashanah (Jewish New Year) 5788 and a very long tail", 200)
    assert len(lines) == 2 and lines[1].endswith("…")
    assert all(text_width(line) <= 200 for line in lines)
    assert wrap_label("Supercalifragilisticexpialidocious", 100)[0].endswith("…")


def test_bar_chart_names_wrap_or_are_cut_with_the_full_name_in_a_title():
    long_name = "Rosh Hashanah (Jewish New Year) 5788: our appeal for the year ahead"
    items = [(long_name, 2_500_000), ("Year-end 2026", 1_200_000), ("(direct)", 50_000)]
    svg = parse(bar_chart(items, money=money, title="By campaign", chart_id="c"))
    rows = svg.findall(f"{SVG}g")
    assert [r.find(f"{SVG}title").text for r in rows] == [
        f"{long_name}: $25,000", "Year-end 2026: $12,000", "(direct): $500"]
    first = [s.text for s in rows[0].find(f"{SVG}text").iter(f"{SVG}tspan")]
    assert len(first) == 2 and first[0].startswith("Rosh Hashanah") and first[1].endswith("…")
    assert [s.text for s in rows[1].find(f"{SVG}text").iter(f"{SVG}tspan")] == [
        "Year-end 2026"]
    assert long_name in svg.find(f"{SVG}desc").text
    assert_every_label_inside(svg)
    # The largest bar and its value end inside the chart.
    rect = rows[0].find(f"{SVG}rect")
    value = rows[0].find(f"{SVG}text[@class='value']")
    assert float(rect.get("x")) + float(rect.get("width")) < float(value.get("x"))
    assert text_extent(value, value.text)[1] <= WIDTH


def test_charts_escape_labels_and_handle_no_data():
    svg = parse(bar_chart([("<script>", 100)], money=money, title="t", chart_id="x"))
    assert any(t.text == "<script>" for t in svg.iter(f"{SVG}tspan"))
    assert "No days yet" in parse(total_chart([], goal=100, money=money, title="e")).find(
        f"{SVG}desc").text
    parse(daily_chart([], money=money, title="empty"))
    assert parse(bar_chart([], money=money, title="empty", chart_id="y")).find(
        f"{SVG}desc").text == "No data yet."
