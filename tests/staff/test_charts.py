from datetime import date, timedelta
from xml.etree import ElementTree

from app.staff.charts import Point, bar_chart, nice_ceiling, raised_chart

SVG = "{http://www.w3.org/2000/svg}"


def money(minor: int) -> str:
    return f"${minor // 100:,}"


def parse(markup) -> ElementTree.Element:
    namespaced = str(markup).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return ElementTree.fromstring(namespaced)


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 7, 11, 24, 26, 99, 101, 2_400_000)] == \
        [1, 1, 10, 20, 25, 50, 100, 200, 2_500_000]


def test_raised_chart_is_accessible_scalable_svg():
    start = date(2026, 11, 1)
    points, total = [], 0
    for i, amount in enumerate([5000, 0, 12000, 3000]):
        total += amount
        points.append(Point(start + timedelta(days=i), amount, total))
    svg = parse(raised_chart(points, goal=50_000, money=money, title="Raised <per> day"))
    assert svg.get("viewBox") == "0 0 640 320" and svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Raised <per> day"
    desc = svg.find(f"{SVG}desc").text
    assert "Raised $200 of a $500 goal" in desc and "best day was 3 November" in desc
    assert len(svg.findall(f"{SVG}rect")) == 3  # no bar for the empty day
    assert svg.find(f"{SVG}polyline") is not None
    assert any("Goal $500" in (t.text or "") for t in svg.iter(f"{SVG}text"))


def test_charts_escape_labels_and_handle_no_data():
    svg = parse(bar_chart([("<script>", 100)], money=money, title="t", chart_id="x"))
    assert any(t.text == "<script>" for t in svg.iter(f"{SVG}text"))
    parse(raised_chart([], goal=100, money=money, title="empty"))
    parse(bar_chart([], money=money, title="empty", chart_id="y"))
