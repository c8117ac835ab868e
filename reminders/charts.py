"""Small inline SVG charts for the weekly review: one self-contained file, no script, no
external reference, printable. Bars are labelled with their values, so the chart reads
without hovering."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

BAR_COLOURS = ("#2f6fb0", "#d9822b", "#3a9a5b", "#b53d3d")


def hbar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    fmt: Callable[[float], str],
    width: int = 640,
) -> str:
    """Horizontal bars, one group per label and one bar per series (with a legend when there
    are several): readable labels of any length, Chinese included, never rotated."""
    if not labels or not any(v for _, values in series for v in values):
        return ""  # nothing to draw: the section's table or note says so
    bar, gap, label_w = 14, 10, 170
    group = bar * len(series) + gap
    legend_h = 22 if len(series) > 1 else 0
    height = legend_h + group * len(labels) + 4
    top = max((max(values, default=0) for _, values in series), default=0) or 1
    plot_w = width - label_w - 90
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]
    for n, (name, _) in enumerate(series if legend_h else ()):
        x = label_w + n * 150
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{BAR_COLOURS[n]}"/>')
        parts.append(f'<text x="{x + 16}" y="15" font-size="12">{escape(name)}</text>')
    for i, label in enumerate(labels):
        y0 = legend_h + i * group
        parts.append(
            f'<text x="{label_w - 6}" y="{y0 + bar * len(series) / 2 + 4}" font-size="12" '
            f'text-anchor="end">{escape(label[:24])}</text>'
        )
        for n, (_, values) in enumerate(series):
            value = float(values[i] or 0)
            w = max(value / top * plot_w, 1 if value else 0)
            y = y0 + n * bar
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 2}" '
                f'fill="{BAR_COLOURS[n % len(BAR_COLOURS)]}"/>'
            )
            parts.append(
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 4}" font-size="11">'
                f"{escape(fmt(value))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
