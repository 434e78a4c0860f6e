"""Chart geometry for the care dashboards, drawn as inline SVG by `admin/care_charts.html`.

Only numbers are computed here; every label is written into the SVG by the template, so Jinja's
autoescaping applies to it like to any other text (a product name cannot inject markup). No JS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PALETTE = (
    "#2f6fed", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d", "#a61e4d",
    "#495057", "#1864ab", "#862e9c",
)  # fmt: skip


def color_of(key: str, keys: tuple[str, ...]) -> str:
    """A stable colour per category (its place in the category list)."""
    index = keys.index(key) if key in keys else len(keys) + sum(map(ord, key))
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    value: int
    y: float
    width: float
    color: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    label_width: int
    row: int
    bars: list[Bar]


def bar_chart(items: list[tuple[str, str, int]], keys: tuple[str, ...], *, width: int = 560) -> BarChart:
    """Horizontal bars: (key, label, value) rows, longest bar = the largest value."""
    label_width, row, value_room = 210, 26, 48
    top = max((v for _, _, v in items), default=0) or 1
    room = width - label_width - value_room
    bars = [
        Bar(key, label, value, i * row + 4, max(1.0, room * value / top) if value else 0.0, color_of(key, keys))
        for i, (key, label, value) in enumerate(items)
    ]
    return BarChart(width, max(row, len(items) * row + 8), label_width, row, bars)


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    label: str
    value: int
    y: float
    height: float
    color: str


@dataclass(frozen=True, slots=True)
class Column:
    bucket: str
    x: float
    width: float
    total: int
    show_label: bool
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StackedChart:
    width: int
    height: int
    left: int
    top: int
    plot_height: int
    ticks: list[tuple[float, int]]  # (y, value)
    columns: list[Column]
    legend: list[tuple[str, str, str]]  # (key, label, color)
    total: int


def _nice_max(value: int) -> int:
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def stacked_chart(
    series: list[tuple[str, dict[str, int]]],
    keys: tuple[str, ...],
    labels: dict[str, str],
    *,
    width: int = 1100,
    plot_height: int = 180,
) -> StackedChart:
    """Stacked columns per time bucket (oldest left), one colour per category, with a y scale."""
    left, top, bottom = 40, 10, 34
    present = [k for k in keys if any(k in counts for _, counts in series)]
    present += sorted({k for _, counts in series for k in counts} - set(present))
    peak = _nice_max(max((sum(c.values()) for _, c in series), default=0))
    slot = (width - left - 10) / max(1, len(series))
    every = max(1, math.ceil(len(series) / 16))  # at most ~16 date labels
    columns = []
    for i, (bucket, counts) in enumerate(series):
        base, segments = float(top + plot_height), []
        for key in present:
            value = counts.get(key, 0)
            if not value:
                continue
            height = plot_height * value / peak
            base -= height
            segments.append(Segment(key, labels.get(key, key), value, base, height, color_of(key, keys)))
        columns.append(
            Column(bucket, left + i * slot + slot * 0.15, max(1.0, slot * 0.7), sum(counts.values()),
                   i % every == 0, segments)
        )  # fmt: skip
    values = sorted({0, peak // 2, peak} if peak >= 4 else set(range(peak + 1)))
    ticks = [(top + plot_height - plot_height * v / peak, v) for v in values]
    legend = [(k, labels.get(k, k), color_of(k, keys)) for k in present]
    total = sum(c.total for c in columns)
    return StackedChart(width, top + plot_height + bottom, left, top, plot_height, ticks, columns, legend, total)
