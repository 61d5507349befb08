"""Step charts of per-interval series as plain SVG, for the HTML load report.

Why plain SVG instead of a charting library: the report is written by load/run.py wherever
it runs, the Docker image's `load` service included, which installs the service's Python
dependencies only; a JavaScript library would have to be vendored or fetched by npm in
each of those places, and its charts exist only once a browser has run it. These charts
are a handful of step lines over one time axis: scales, ticks and a legend are all they
need. The SVG is drawn here, so the file shows its charts with scripts disabled, prints,
and passes a Content-Security-Policy that forbids every script and fetch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 220, 16, 36          # margins: axes left and below, legend right
# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000",
           "#999999")


@dataclass
class Series:
    """One line: a value per interval (None: nothing to show there)."""

    name: str
    values: list
    color: str | None = None
    dashed: bool = False


@dataclass
class Chart:
    """A chart over the run's intervals; ``starts`` and ``width`` place each value."""

    title: str
    unit: str
    starts: list
    width: float
    series: list = field(default_factory=list)
    note: str = ""


def nice_ceiling(value: float) -> tuple[float, float]:
    """(top, step): a round axis top >= value and a tick step dividing it in 4 or 5."""
    if value <= 0 or not math.isfinite(value):
        return 1.0, 0.25
    magnitude = 10 ** math.floor(math.log10(value / 4))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * 5 >= value:
            return step * math.ceil(value / step - 1e-9), step
    return 10 * magnitude * 5, 10 * magnitude


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:g}"


def render(chart: Chart) -> str:
    """The chart as an <svg> element (inline in HTML, no external references)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_end = (chart.starts[-1] + chart.width) if chart.starts else 1.0
    peak = max((v for s in chart.series for v in s.values if v is not None), default=0)
    y_top, y_step = nice_ceiling(peak)

    def x(t):
        return LEFT + plot_w * t / x_end

    def y(v):
        return TOP + plot_h * (1 - v / y_top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
             f'<title>{escape(chart.title)}</title>']
    for i in range(int(round(y_top / y_step)) + 1):
        value = i * y_step
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" '
                     f'y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
                     f'text-anchor="end">{_number(value)}</text>')
    x_top, x_step = nice_ceiling(x_end)
    for i in range(int(round(x_top / x_step)) + 1):
        t = i * x_step
        if t <= x_end + 1e-9:
            parts.append(f'<text class="tick" x="{x(t):.1f}" y="{TOP + plot_h + 16}" '
                         f'text-anchor="middle">{_number(t)}</text>')
    parts.append(f'<text class="axis" x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" '
                 f'text-anchor="middle">seconds into the run</text>'
                 f'<text class="axis" x="12" y="{TOP + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {TOP + plot_h / 2})">{escape(chart.unit)}</text>'
                 f'<path class="frame" d="M{LEFT} {TOP}V{TOP + plot_h}H{LEFT + plot_w}"/>')
    for index, series in enumerate(chart.series):
        color = series.color or PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if series.dashed else ""
        shown = [v for v in series.values if v is not None]
        summary = (f"max {_number(max(shown))}, mean {_number(sum(shown) / len(shown))}"
                   if shown else "no values")
        parts.append(f'<path class="series" data-series="{escape(series.name)}" '
                     f'stroke="{color}"{dash} d="{_steps(series.values, chart, x, y)}">'
                     f'<title>{escape(series.name)}: {summary}</title></path>')
        legend_y = TOP + 14 + 18 * index
        parts.append(f'<line x1="{WIDTH - RIGHT + 16}" x2="{WIDTH - RIGHT + 40}" '
                     f'y1="{legend_y - 4}" y2="{legend_y - 4}" stroke="{color}" '
                     f'stroke-width="2"{dash}/><text class="legend" x="{WIDTH - RIGHT + 46}" '
                     f'y="{legend_y}">{escape(series.name)}</text>')
    if chart.note:
        parts.append(f'<text class="note" x="{LEFT + 8}" y="{TOP + 16}">'
                     f'{escape(chart.note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _steps(values, chart: Chart, x, y) -> str:
    """Path data holding each value across its interval; a None leaves a gap."""
    commands, drawing = [], False
    for start, value in zip(chart.starts, values):
        if value is None:
            drawing = False
            continue
        left, right, level = x(start), x(start + chart.width), y(value)
        commands.append(f"V{level:.1f}H{right:.1f}" if drawing
                        else f"M{left:.1f} {level:.1f}H{right:.1f}")
        drawing = True
    return "".join(commands)
