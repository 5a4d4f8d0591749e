"""Inline SVG charts for the office report page.

Why SVG strings: the dashboard is rendered server-side (aiohttp + jinja2) and must work on
an office PC or a phone with a poor connection, so there is no JS bundle and no CDN. The
functions here are pure (data in, markup out): easy to test, safe to cache, and the template
only has to drop the string in with ``|safe``.

Conventions every chart follows:

- Every text that comes from the caller is XML-escaped (and XML-illegal control characters
  are dropped), so the output is always a well-formed ``<svg>`` that ElementTree can parse.
- ``viewBox`` + ``width="100%"``: the chart scales to its container; the viewBox is narrow
  (440 units) so 13-unit text stays readable when squeezed onto a phone.
- Numbers are shown the Indonesian way: "," is the decimal separator and "." groups
  thousands (``1.234,5``). Whole numbers get no decimals, others at most two.
- Colours come from a fixed colour-blind-friendly palette (Okabe-Ito plus Paul Tol extras)
  and cycle in series order, so a category keeps its colour from chart to chart as long as
  the caller keeps the series order stable.
- ``unit`` is appended to displayed values (hover titles, KPI text) and shown once above the
  y axis; a unit that starts with a letter gets a space ("3 hari"), "%" does not ("80%").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

# Okabe-Ito first (minus black), then Tol's indigo/wine; yellow last: poor contrast on white.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
                            "#D55E00", "#332288", "#882255", "#999999", "#F0E442")
EMPTY_TEXT = "Belum ada data"

_W = 440  # viewBox width
_PAD = 10
_FONT = 13
_CHAR = _FONT * 0.6  # average glyph width: layout without font metrics
_PLOT_TOP = 44  # below the title and the unit caption
_PLOT_H = 200
_MAX_XLABELS = 12
_INK, _GRID, _TRACK = "#333", "#ddd", "#eee"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def format_number(value: float, decimals: int = 2) -> str:
    """Indonesian display: ``1234.5`` -> ``"1.234,5"``, ``3.0`` -> ``"3"``, at most 2 decimals."""
    v = round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = f"{int(v):,}" if v.is_integer() else f"{v:,.{decimals}f}".rstrip("0")
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def _esc(text: object) -> str:
    """Escape caller text for both element content and attribute values."""
    return escape(_NOT_XML.sub("", str(text)), {'"': "&quot;", "'": "&apos;"})


def _c(x: float) -> str:
    """A coordinate, short: two decimals are plenty at this scale."""
    return f"{round(x, 2) + 0.0:g}"


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _with_unit(value: float, unit: str) -> str:
    if not unit:
        return format_number(value)
    return format_number(value) + (" " if unit[0].isalnum() else "") + unit


def _values(raw: Sequence[float | None], n: int) -> list[float | None]:
    """Exactly ``n`` values: short series padded with gaps; NaN/inf treated as missing."""
    out: list[float | None] = []
    for v in list(raw[:n]) + [None] * (n - len(raw)):
        f = None if v is None else float(v)
        out.append(f if f is not None and math.isfinite(f) else None)
    return out


def _ticks(lo: float, hi: float, *, integer: bool = False, exact: bool = False) -> list[float]:
    """3–5 round tick values (steps 1, 2, 2.5, 5 x 10^k) for the range ``lo``..``hi``.

    ``exact=False`` widens the range outward to the ticks, so the axis ends on a round number
    at or above the data. ``exact=True`` keeps the caller's bounds and picks round values
    inside them, preferring a step that lands on both ends (25..100 -> 25, 50, 75, 100).
    ``integer`` forbids fractional steps (a count axis with "0,5 tiket" looks broken).
    """
    if hi <= lo:
        hi = lo + 1
    k0 = math.floor(math.log10((hi - lo) / 5))
    found: list[list[float]] = []
    for k in range(k0 - 1, k0 + 3):
        for m in (1, 2, 2.5, 5):
            step = m * 10.0**k
            if (integer and (step < 1 or not step.is_integer())) or (m == 2.5 and k < 0):
                continue
            if exact:
                a, b = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
            else:
                a, b = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
                b = max(b, a + 2)
            if 2 <= b - a <= 4:
                ticks = [round(i * step, 9) for i in range(a, b + 1)]
                if not exact:
                    return ticks
                found.append(ticks)
    ends = [t for t in found if math.isclose(t[0], lo) and math.isclose(t[-1], hi)]
    return (ends or found or [[lo, hi]])[0]


def _svg(title: str, height: float, body: Sequence[str]) -> str:
    """The outer ``<svg>``: accessible name, scalable, and the visible title."""
    t = _esc(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_c(height)}" '
            f'width="100%" role="img" aria-label="{t}" font-family="system-ui, sans-serif" '
            f'font-size="{_FONT}" fill="{_INK}"><title>{t}</title>'
            f'<text x="{_PAD}" y="20" font-size="15" font-weight="bold">{t}</text>'
            + "".join(body) + "</svg>")


def _empty(title: str, empty_text: str) -> str:
    return _svg(title, 110, [f'<text class="empty" x="{_W / 2}" y="70" text-anchor="middle" '
                             f'fill="#777">{_esc(empty_text)}</text>'])


def _y_axis(ticks: Sequence[float], lo: float, hi: float, left: float,
            unit: str) -> list[str]:
    """Gridlines with tick labels; the baseline is drawn darker."""
    parts = [f'<text x="{_PAD}" y="{_PLOT_TOP - 10}" font-size="11" fill="#777">'
             f'{_esc(unit.strip())}</text>'] if unit.strip() else []
    for t in ticks:
        y = _PLOT_TOP + _PLOT_H * (1 - (t - lo) / (hi - lo))
        colour = "#999" if t == ticks[0] else _GRID
        parts.append(f'<line x1="{_c(left)}" x2="{_W - _PAD}" y1="{_c(y)}" y2="{_c(y)}" '
                     f'stroke="{colour}"/><text class="ytick" x="{_c(left - 5)}" '
                     f'y="{_c(y + 4)}" text-anchor="end">{format_number(t)}</text>')
    return parts


def _x_labels(labels: Sequence[str], left: float, slot: float) -> list[str]:
    """Centred under each slot; with many labels only every k-th is shown (first included).

    How many fit depends on label length as well as count, and never more than 12: a wall
    of week numbers is unreadable on a phone even when it technically fits.
    """
    longest = min(max(len(str(lb)) for lb in labels), 12)
    fit = max(1, min(_MAX_XLABELS, int(slot * len(labels) // (longest * _CHAR + 8))))
    every = math.ceil(len(labels) / fit)
    room = max(2, int((slot * every - 4) / _CHAR))
    y = _PLOT_TOP + _PLOT_H + 18
    parts = []
    for j in range(0, len(labels), every):
        text = str(labels[j])
        text = text if len(text) <= room else text[: room - 1] + "…"
        half = len(text) * _CHAR / 2  # keep the first and last label inside the viewBox
        x = min(max(left + (j + 0.5) * slot, half + 2), _W - half - 2)
        parts.append(f'<text class="xlabel" x="{_c(x)}" y="{y}" '
                     f'text-anchor="middle">{_esc(text)}</text>')
    return parts


def _legend(names: Sequence[str], top: float) -> tuple[list[str], float]:
    """A swatch and name per series, wrapped into rows; returns the markup and bottom y."""
    parts, x, y = ['<g class="legend">'], float(_PAD), top
    for i, name in enumerate(names):
        width = 17 + len(str(name)) * _CHAR + 14
        if x > _PAD and x + width > _W - _PAD:
            x, y = _PAD, y + 20
        parts.append(f'<rect x="{_c(x)}" y="{_c(y)}" width="12" height="12" rx="2" '
                     f'fill="{_colour(i)}"/>'
                     f'<text x="{_c(x + 17)}" y="{_c(y + 11)}">{_esc(name)}</text>')
        x += width
    parts.append("</g>")
    return parts, y + 20


def _left_margin(ticks: Sequence[float]) -> float:
    return _PAD + max(len(format_number(t)) for t in ticks) * _CHAR + 6


def bar_chart(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
              *, stacked: bool = True, unit: str = "",
              empty_text: str = EMPTY_TEXT) -> str:
    """Bars per label (e.g. tickets per ISO week), one series per category/office.

    Stacked by default because the report asks "how many in total, and of what"; grouped
    bars (``stacked=False``) compare series side by side. Missing, negative and non-finite
    values count as 0 (a bar cannot go below the baseline). "Empty" means no positive value
    at all: an all-zero chart would only draw axes, which reads as broken.
    """
    n = len(labels)
    values = [[max(v or 0.0, 0.0) for v in _values(vals, n)] for _, vals in series]
    columns = list(zip(*values, strict=True)) if values else []
    heights = [sum(col) if stacked else max(col) for col in columns]
    if not n or max(heights, default=0.0) <= 0:
        return _empty(title, empty_text)
    integer = all(v.is_integer() for row in values for v in row)
    ticks = _ticks(0.0, max(heights), integer=integer)
    top = ticks[-1]
    left = _left_margin(ticks)
    slot = (_W - _PAD - left) / n
    bottom = _PLOT_TOP + _PLOT_H
    parts = _y_axis(ticks, 0.0, top, left, unit)
    for j, label in enumerate(labels):
        base = 0.0
        for i, (name, _) in enumerate(series):
            v = values[i][j]
            if v <= 0:
                continue
            h = v / top * _PLOT_H
            if stacked:
                x, w, y = left + j * slot + slot * 0.15, slot * 0.7, bottom - base - h
                base += h
            else:
                w = slot * 0.8 / len(series)
                x, y = left + j * slot + slot * 0.1 + i * w, bottom - h
            tip = _esc(f"{name}, {label}: {_with_unit(v, unit)}")
            parts.append(f'<rect class="bar" x="{_c(x)}" y="{_c(y)}" width="{_c(w)}" '
                         f'height="{_c(h)}" fill="{_colour(i)}"><title>{tip}</title></rect>')
    parts += _x_labels(labels, left, slot)
    legend, height = _legend([name for name, _ in series], bottom + 32)
    return _svg(title, height + 4, parts + legend)


def line_chart(title: str, labels: Sequence[str],
               series: Sequence[tuple[str, Sequence[float | None]]], *,
               y_min: float | None = None, y_max: float | None = None, unit: str = "",
               empty_text: str = EMPTY_TEXT) -> str:
    """Lines with points per label (e.g. IKM per unsur per month, 25..100).

    ``None`` is "not measured" and breaks the line (separate polylines) instead of plunging
    to zero, which would read as a real collapse in satisfaction. A measured 0 is data and is
    drawn; only a chart without any value is "empty". With both ``y_min`` and ``y_max`` the
    axis is exactly that range (values outside are pinned to the edge, hover shows the truth);
    otherwise the axis starts at 0 (or the given ``y_min``) and rounds up past the data.
    """
    n = len(labels)
    values = [_values(vals, n) for _, vals in series]
    present = [v for row in values for v in row if v is not None]
    if not n or not present:
        return _empty(title, empty_text)
    exact = y_min is not None and y_max is not None
    lo = y_min if y_min is not None else min(0.0, *present)
    hi = y_max if y_max is not None else max(present)
    hi = hi if hi > lo else lo + 1
    ticks = _ticks(lo, hi, exact=exact)
    lo, hi = (lo, hi) if exact else (ticks[0], ticks[-1])
    left = _left_margin(ticks)
    slot = (_W - _PAD - left) / n
    parts = _y_axis(ticks, lo, hi, left, unit)
    for i, (name, _) in enumerate(series):
        colour = _colour(i)
        runs: list[list[tuple[float, float]]] = [[]]
        dots: list[str] = []
        for j, v in enumerate(values[i]):
            if v is None:
                runs.append([])
                continue
            x = left + (j + 0.5) * slot
            y = _PLOT_TOP + _PLOT_H * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))
            runs[-1].append((x, y))
            tip = _esc(f"{name}, {labels[j]}: {_with_unit(v, unit)}")
            dots.append(f'<circle cx="{_c(x)}" cy="{_c(y)}" r="3.5" fill="{colour}" '
                        f'stroke="#fff"><title>{tip}</title></circle>')
        parts.append('<g class="series">')
        parts += [f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                  + " ".join(f"{_c(x)},{_c(y)}" for x, y in run) + '"/>'
                  for run in runs if len(run) >= 2]
        parts += [*dots, "</g>"]
    parts += _x_labels(labels, left, slot)
    legend, height = _legend([name for name, _ in series], _PLOT_TOP + _PLOT_H + 32)
    return _svg(title, height + 4, parts + legend)


def kpi_bar(title: str, rows: Sequence[tuple[str, float, float]], *, unit: str = "",
            empty_text: str = EMPTY_TEXT) -> str:
    """Horizontal progress bars, one per row of (label, value, maximum), e.g. tickets
    closed within SLA out of tickets closed, per office.

    Label above its bar (office names are long, phones are narrow) with "value / max (pct)"
    on the right. 0 out of 10 is real data (an office missing every deadline) and is drawn;
    a row with maximum <= 0 (or a non-finite number) has nothing to measure and shows "–".
    Only a list without any measurable row is "empty".
    """
    if not any(m > 0 for _, _, m in rows):
        return _empty(title, empty_text)
    track = _W - 2 * _PAD
    parts, y = [], 36.0
    for label, value, maximum in rows:
        if maximum > 0 and math.isfinite(value) and math.isfinite(maximum):
            share = min(max(value / maximum, 0.0), 1.0)
            text = (f"{format_number(value)} / {_with_unit(maximum, unit)} "
                    f"({format_number(100 * value / maximum, 1)}%)")
        else:
            share, text = 0.0, "–"
        room = max(4, int((track - len(text) * _CHAR - 10) / _CHAR))
        name = str(label) if len(str(label)) <= room else str(label)[: room - 1] + "…"
        tip = _esc(f"{label}: {text}")
        parts.append(f'<text x="{_PAD}" y="{_c(y + 12)}">{_esc(name)}</text>'
                     f'<text x="{_W - _PAD}" y="{_c(y + 12)}" text-anchor="end">'
                     f'{_esc(text)}</text>'
                     f'<rect x="{_PAD}" y="{_c(y + 18)}" width="{track}" height="10" rx="3" '
                     f'fill="{_TRACK}"/><rect class="kpi" x="{_PAD}" y="{_c(y + 18)}" '
                     f'width="{_c(track * share)}" height="10" rx="3" fill="{PALETTE[0]}">'
                     f"<title>{tip}</title></rect>")
        y += 38
    return _svg(title, y + 6, parts)
