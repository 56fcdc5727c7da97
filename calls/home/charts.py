"""Bar charts drawn on the server as inline SVG: no script, no inline style (the CSP allows neither), no CDN.

Accessible: the SVG is an image with a title and a description that says the totals, every bar has a tooltip
(`<title>`), and the page shows the same numbers as a table beside it. Colours come from CSS classes in
calls/static/calls/home.css, so the chart follows the console's light and dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 220
PAD_LEFT = 36
PAD_RIGHT = 8
PAD_TOP = 16
PAD_BOTTOM = 28


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (may be shortened by `every`)
    long_label: str  # in the tooltip and the table
    total: int
    highlighted: int = 0  # drawn over the bar's foot (escalated calls), at most `total`


def nice_ceiling(value: int) -> int:
    """The axis top: the smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # unreachable: 10 * power >= value always


def bar_chart(*, chart_id: str, title: str, description: str, bars: Sequence[Bar], every: int = 1) -> SafeString:
    """An SVG bar chart; `every` labels one bar in so many under the axis (24 hours do not all fit)."""
    top = nice_ceiling(max((bar.total for bar in bars), default=0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1.0)
    base = PAD_TOP + plot_h
    parts = [
        f'<svg class="home-chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]
    for tick in (0, top // 2 if top >= 2 else None, top):
        if tick is None:
            continue
        y = base - plot_h * tick / top
        parts.append(
            f'<line class="home-chart__grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="home-chart__axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for index, bar in enumerate(bars):
        x = PAD_LEFT + slot * index + (slot - bar_w) / 2
        h = plot_h * bar.total / top
        hh = plot_h * min(bar.highlighted, bar.total) / top
        tooltip = f"{bar.long_label}: {bar.total} call{'s' if bar.total != 1 else ''}"
        if bar.highlighted:
            tooltip += f", {bar.highlighted} escalated"
        parts.append(f'<g class="home-chart__bar"><title>{escape(tooltip)}</title>')
        # An invisible full-height target, so an empty hour still has a tooltip to hover.
        parts.append(f'<rect class="home-chart__hit" x="{x:.1f}" y="{PAD_TOP}" width="{bar_w:.1f}" height="{plot_h}"/>')
        if bar.total:
            parts.append(
                f'<rect class="home-chart__calls" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" rx="2"/>'
            )
        if hh:
            parts.append(
                f'<rect class="home-chart__escalated" x="{x:.1f}" y="{base - hh:.1f}" width="{bar_w:.1f}" '
                f'height="{hh:.1f}"/>'
            )
        if bar.total and len(bars) <= 31:
            parts.append(
                f'<text class="home-chart__value" x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" '
                f'text-anchor="middle">{bar.total}</text>'
            )
        parts.append("</g>")
        if index % every == 0:
            parts.append(
                f'<text class="home-chart__axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{escape(bar.label)}</text>'
            )
    parts.append(
        f'<line class="home-chart__baseline" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{base}" y2="{base}"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()
