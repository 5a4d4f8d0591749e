"""Inline SVG charts: well-formed, escaped, honest proportions, gaps, empty states, legends."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest

from bot.dashboard.charts import PALETTE, bar_chart, format_number, kpi_bar, line_chart

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'kutip'"


def _svg(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{NS}svg"
    return root


def _number(text: str) -> float:
    """Back from the Indonesian display form: "1.234,5" -> 1234.5."""
    return float(text.replace(".", "").replace(",", "."))


def _bars(root: ET.Element, series: str) -> dict[str, ET.Element]:
    """The bar segments of one series, keyed by x label (read from each segment's <title>)."""
    out = {}
    for rect in root.iter(f"{NS}rect"):
        tip = rect.findtext(f"{NS}title") or ""
        if rect.get("class") == "bar" and tip.startswith(f"{series}, "):
            out[tip[len(series) + 2:].rsplit(":", 1)[0]] = rect
    return out


def _f(el: ET.Element, attr: str) -> float:
    return float(el.get(attr, "nan"))


def _gridlines(root: ET.Element) -> list[float]:
    return sorted(_f(line, "y1") for line in root.iter(f"{NS}line"))


def _ticks(root: ET.Element) -> list[float]:
    return [_number(t.text or "") for t in root.iter(f"{NS}text") if t.get("class") == "ytick"]


def _texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text") if t.get("class") == cls]


def _legend(root: ET.Element) -> list[str]:
    g = next(g for g in root.iter(f"{NS}g") if g.get("class") == "legend")
    return [t.text or "" for t in g.iter(f"{NS}text")]


ALL_CHARTS = {
    "bar": lambda title: bar_chart(title, ["W1", "W2"], [("a", [1, 2]), ("b", [3, 0])]),
    "grouped": lambda title: bar_chart(title, ["W1"], [("a", [1])], stacked=False),
    "line": lambda title: line_chart(title, ["Jan", "Feb"], [("u1", [80, None])]),
    "kpi": lambda title: kpi_bar(title, [("Kantor A", 3, 4)]),
    "empty": lambda title: bar_chart(title, [], []),
}


@pytest.mark.parametrize("kind", ALL_CHARTS)
def test_every_chart_is_a_standalone_accessible_scalable_svg(kind: str) -> None:
    markup = ALL_CHARTS[kind]("Laporan bulanan")
    root = _svg(markup)
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Laporan bulanan"
    assert root[0].tag == f"{NS}title" and root[0].text == "Laporan bulanan"
    assert root.get("width") == "100%"
    x, y, w, h = map(float, root.get("viewBox", "").split())
    assert (x, y) == (0, 0) and w > 0 and h > 0
    # nothing to fetch: no links, no stylesheets, no scripts, no URLs except the namespace
    assert "href" not in markup and "url(" not in markup and "<script" not in markup
    assert markup.count("http") == 1


@pytest.mark.parametrize("kind", ALL_CHARTS)
def test_hostile_caller_text_is_escaped_everywhere(kind: str) -> None:
    charts = {
        "bar": bar_chart(HOSTILE, [HOSTILE, "W2"], [(HOSTILE, [1, 2]), ("b", [3, 0])]),
        "grouped": bar_chart(HOSTILE, [HOSTILE], [(HOSTILE, [1])], stacked=False, unit=HOSTILE),
        "line": line_chart(HOSTILE, [HOSTILE, "Feb"], [(HOSTILE, [80, 90])], unit=HOSTILE),
        "kpi": kpi_bar(HOSTILE, [(HOSTILE, 3, 4)], unit=HOSTILE),
        "empty": bar_chart(HOSTILE, [], [], empty_text=HOSTILE),
    }
    markup = charts[kind]
    assert "<script" not in markup
    assert "&lt;script&gt;" in markup
    root = _svg(markup)
    assert root.get("aria-label") == HOSTILE  # attribute round-trips, quotes and all
    assert any(HOSTILE in (el.text or "") for el in root.iter() if el is not root[0])


def test_xml_illegal_control_characters_are_dropped_not_fatal() -> None:
    root = _svg(bar_chart("a\x00b", ["W\x0b1"], [("s\x1f", [1])]))
    assert root.get("aria-label") == "ab"
    assert "W1" in _texts(root, "xlabel")


def test_stacked_segment_heights_are_proportional_and_stack_on_each_other() -> None:
    root = _svg(bar_chart("t", ["A", "B", "C"], [("x", [1, 2, 4]), ("y", [3, 0, 1])]))
    x, y = _bars(root, "x"), _bars(root, "y")
    assert set(x) == {"A", "B", "C"}
    assert set(y) == {"A", "C"}  # a zero makes no sliver
    unit = _f(x["A"], "height")
    assert unit > 0
    assert _f(x["B"], "height") == pytest.approx(2 * unit, rel=0.01)
    assert _f(x["C"], "height") == pytest.approx(4 * unit, rel=0.01)
    assert _f(y["A"], "height") == pytest.approx(3 * unit, rel=0.01)
    # y sits directly on top of x, in the same column
    assert _f(y["A"], "y") + _f(y["A"], "height") == pytest.approx(_f(x["A"], "y"), abs=0.02)
    assert _f(y["A"], "x") == _f(x["A"], "x")
    assert _f(y["C"], "x") > _f(y["A"], "x")
    # all columns stand on the same baseline, which is the bottom gridline
    baseline = _gridlines(root)[-1]
    for rect in x.values():
        assert _f(rect, "y") + _f(rect, "height") == pytest.approx(baseline, abs=0.02)


@pytest.mark.parametrize("peak", [1, 3, 7, 12, 14.5, 99, 123, 1000, 0.3, 2345.6])
def test_tallest_stack_fits_and_ticks_are_3_to_5_round_values_covering_it(peak: float) -> None:
    # two series whose sum peaks at `peak` in the middle column
    root = _svg(bar_chart("t", ["A", "B", "C"],
                          [("x", [peak / 4, peak / 2, 0]), ("y", [0, peak / 2, peak / 8])]))
    ticks = _ticks(root)
    assert 3 <= len(ticks) <= 5
    assert ticks[0] == 0 and ticks[-1] >= peak
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced
    step = steps.pop()
    assert step / 10 ** math.floor(math.log10(step)) in (1, 2, 2.5, 5)
    top, baseline = _gridlines(root)[0], _gridlines(root)[-1]
    stack_top = _f(_bars(root, "y")["B"], "y")  # y is the upper segment of column B
    assert top - 0.02 <= stack_top < baseline
    # and the stack's height matches its value on the tick scale
    height = baseline - stack_top
    assert height / (baseline - top) == pytest.approx(peak / ticks[-1], rel=0.01)


def test_count_axes_never_show_fractional_ticks() -> None:
    root = _svg(bar_chart("t", ["A"], [("x", [1])]))
    assert _ticks(root) == [0, 1, 2]
    root = _svg(bar_chart("t", ["A"], [("x", [0.5])]))
    assert _ticks(root)[-1] < 1  # fractional data may have fractional ticks


def test_grouped_bars_stand_side_by_side_and_scale_to_the_tallest_single_bar() -> None:
    root = _svg(bar_chart("t", ["A"], [("x", [8]), ("y", [4])], stacked=False))
    x, y = _bars(root, "x")["A"], _bars(root, "y")["A"]
    assert _f(y, "x") >= _f(x, "x") + _f(x, "width") - 0.02
    assert _f(x, "height") == pytest.approx(2 * _f(y, "height"), rel=0.01)
    assert _f(x, "y") + _f(x, "height") == pytest.approx(_f(y, "y") + _f(y, "height"))
    assert 8 <= _ticks(root)[-1] < 12  # not scaled to the sum


def test_missing_negative_and_non_finite_bar_values_count_as_zero() -> None:
    markup = bar_chart("t", ["A", "B", "C", "D"], [("x", [2, -5, math.nan, math.inf])])
    root = _svg(markup)
    assert set(_bars(root, "x")) == {"A"}
    assert "nan" not in markup.lower() and "inf" not in markup.lower()


def test_values_and_units_in_hover_titles_use_indonesian_numbers() -> None:
    root = _svg(bar_chart("t", ["W1"], [("KTP", [1234.5])], unit="tiket"))
    assert _bars(root, "KTP")["W1"].findtext(f"{NS}title") == "KTP, W1: 1.234,5 tiket"
    root = _svg(line_chart("t", ["Jan"], [("U1", [85.456])], unit="%"))
    assert root.find(f".//{NS}circle/{NS}title").text == "U1, Jan: 85,46%"  # type: ignore


@pytest.mark.parametrize(("value", "shown"), [
    (0, "0"), (3.0, "3"), (1234, "1.234"), (1234.5, "1.234,5"), (85.456, "85,46"),
    (2.5, "2,5"), (0.1, "0,1"), (-0.001, "0"), (-1.25, "-1,25"), (1_000_000, "1.000.000"),
])
def test_format_number(value: float, shown: str) -> None:
    assert format_number(value) == shown


def _series_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if g.get("class") == "series"]


def test_none_in_a_line_is_a_gap_not_a_zero() -> None:
    root = _svg(line_chart("IKM", ["Jan", "Feb", "Mar", "Apr", "Mei"],
                           [("U1", [80, 82, None, 90, 91]), ("U2", [70, None, 75, 76, None])],
                           y_min=25, y_max=100))
    u1, u2 = _series_groups(root)
    assert len(u1.findall(f"{NS}polyline")) == 2
    assert [len(p.get("points", "").split()) for p in u1.findall(f"{NS}polyline")] == [2, 2]
    # U2: a lone point (no line) then a two-point segment
    assert len(u2.findall(f"{NS}polyline")) == 1
    assert len(u2.findall(f"{NS}circle")) == 3
    # nothing was drawn on the baseline for the missing months
    baseline = _gridlines(root)[-1]
    cys = [_f(c, "cy") for c in root.iter(f"{NS}circle")]
    assert len(cys) == 7 and all(cy < baseline - 1 for cy in cys)
    tips = [c.findtext(f"{NS}title") or "" for c in root.iter(f"{NS}circle")]
    assert "U1, Mar" not in " ".join(tips)


def test_line_with_fixed_range_uses_exactly_that_range() -> None:
    root = _svg(line_chart("IKM", ["Jan", "Feb", "Mar"], [("U1", [100, 25, 10])],
                           y_min=25, y_max=100))
    assert _ticks(root) == [25, 50, 75, 100]
    top, baseline = _gridlines(root)[0], _gridlines(root)[-1]
    cys = [_f(c, "cy") for c in root.iter(f"{NS}circle")]
    assert cys[0] == pytest.approx(top, abs=0.02)
    assert cys[1] == pytest.approx(baseline, abs=0.02)
    assert cys[2] == pytest.approx(baseline, abs=0.02)  # out of range: pinned to the edge...
    tips = [c.findtext(f"{NS}title") for c in root.iter(f"{NS}circle")]
    assert tips[2] == "U1, Mar: 10"  # ...but the hover still tells the truth


def test_line_auto_range_starts_at_zero_and_covers_the_data() -> None:
    root = _svg(line_chart("t", ["a", "b"], [("s", [3.2, 87])]))
    ticks = _ticks(root)
    assert ticks[0] == 0 and ticks[-1] >= 87 and 3 <= len(ticks) <= 5


def test_a_measured_zero_is_data_for_lines_and_kpis() -> None:
    line = line_chart("t", ["a", "b"], [("s", [0, 0])])
    assert "Belum ada data" not in line and len(_svg(line).findall(f".//{NS}circle")) == 2
    kpi = kpi_bar("t", [("Kantor A", 0, 10)])
    assert "Belum ada data" not in kpi and "0 / 10 (0%)" in kpi


@pytest.mark.parametrize("markup", [
    bar_chart("t", [], []),
    bar_chart("t", [], [("x", [])]),
    bar_chart("t", ["W1", "W2"], []),
    bar_chart("t", ["W1", "W2"], [("x", [0, 0]), ("y", [0, None])]),  # type: ignore[list-item]
    line_chart("t", [], []),
    line_chart("t", ["Jan", "Feb"], [("u", [None, None])]),
    kpi_bar("t", []),
    kpi_bar("t", [("Kantor A", 0, 0)]),
])
def test_empty_data_says_so_in_a_valid_svg(markup: str) -> None:
    root = _svg(markup)
    assert _texts(root, "empty") == ["Belum ada data"]
    assert root.find(f".//{NS}rect") is None and root.find(f".//{NS}polyline") is None


def test_empty_text_is_the_callers() -> None:
    root = _svg(line_chart("t", [], [], empty_text="Tidak ada survei"))
    assert _texts(root, "empty") == ["Tidak ada survei"]


def test_many_labels_are_thinned_few_are_all_shown() -> None:
    weeks = [f"2026-W{i:02d}" for i in range(1, 53)]
    root = _svg(bar_chart("t", weeks, [("x", list(range(52)))]))
    shown = _texts(root, "xlabel")
    assert 2 <= len(shown) <= 12
    assert shown[0] == "2026-W01"
    assert len(_bars(root, "x")) == 51  # every week still has its bar (W01 is 0)
    short = ["Jan", "Feb", "Mar", "Apr", "Mei"]
    assert _texts(_svg(line_chart("t", short, [("s", [1, 2, 3, 4, 5])])), "xlabel") == short


def test_x_labels_stay_inside_the_viewbox() -> None:
    long = "Kantor Dukcapil Kabupaten Sumba Barat Daya"
    root = _svg(bar_chart("t", [long, "Kupang"], [("x", [1, 2])], stacked=False))
    width = float(root.get("viewBox", "").split()[2])
    labels = [t for t in root.iter(f"{NS}text") if t.get("class") == "xlabel"]
    assert labels[0].text != long and (labels[0].text or "").endswith("…")
    for t in labels:
        half = len(t.text or "") * 13 * 0.6 / 2
        assert _f(t, "x") - half >= 0 and _f(t, "x") + half <= width


def test_legend_lists_every_series_and_colours_cycle() -> None:
    names = [f"Dimensi {i}" for i in range(1, 12)]
    root = _svg(bar_chart("t", ["W1"], [(n, [1]) for n in names]))
    assert _legend(root) == names
    g = next(g for g in root.iter(f"{NS}g") if g.get("class") == "legend")
    swatches = [r.get("fill") for r in g.iter(f"{NS}rect")]
    assert swatches[:10] == list(PALETTE) and len(set(PALETTE)) == 10
    assert swatches[10] == swatches[0]
    # each bar segment wears its series' legend colour
    assert [_bars(root, n)["W1"].get("fill") for n in names] == swatches
    line = _svg(line_chart("t", ["a"], [("p", [1]), ("q", [None])]))
    assert _legend(line) == ["p", "q"]


def test_kpi_bars_are_proportional_clamped_and_labelled() -> None:
    root = _svg(kpi_bar("SLA", [("A", 12, 15), ("B", 0, 4), ("C", 0, 0), ("D", 20, 10)]))
    fills = [r for r in root.iter(f"{NS}rect") if r.get("class") == "kpi"]
    tracks = [r for r in root.iter(f"{NS}rect") if r.get("class") != "kpi"]
    full = _f(tracks[0], "width")
    assert [_f(r, "width") / full for r in fills] == pytest.approx([0.8, 0, 0, 1])
    assert fills[0].findtext(f"{NS}title") == "A: 12 / 15 (80%)"
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "–" in texts and "20 / 10 (200%)" in texts
