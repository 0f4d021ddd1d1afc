"""Charts for the admin dashboards as inline SVG: no JavaScript, no CDN, every label escaped.

Each chart is an ``<svg role="img">`` with a title; the dashboards put the same figures
in a table beside it for screen readers and for copying.
"""

from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#1a5fb4", "#e66100", "#26a269", "#a51d2d", "#613583", "#986a44", "#63452c",
           "#c64600", "#2ec27e", "#5e5c64")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40


def _frame(title: str, body: list[str], legend: Sequence[str], height: int = HEIGHT
           ) -> SafeString:
    keys = "".join(
        f'<g transform="translate({LEFT + 130 * (i % 4)},{height - 12 - 14 * (i // 4)})">'
        f'<rect width="10" height="10" y="-9" fill="{PALETTE[i % len(PALETTE)]}"/>'
        f'<text x="14" font-size="11">{escape(name[:18])}</text></g>'
        for i, name in enumerate(legend))
    # Every text above and in the bodies went through escape().
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" style="max-width:{WIDTH}px;font-family:system-ui,sans-serif">'
        f"<title>{escape(title)}</title>{''.join(body)}{keys}</svg>")


def _axis(top: float, height: int, fmt: str) -> list[str]:
    plot = height - TOP - BOTTOM
    lines = []
    for step in range(5):
        value = top * step / 4
        y = TOP + plot - plot * step / 4
        lines.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#dde1e8"/><text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{escape(fmt.format(value))}</text>')
    return lines


def line_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
               *, fmt: str = "{:.1%}", height: int = HEIGHT) -> SafeString:
    """One line per series over the labels (None leaves a gap)."""
    values = [v for points in series.values() for v in points if v is not None]
    top = max(values, default=0.0) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    body = _axis(top, height, fmt)
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [(LEFT + step * j, TOP + plot_h - plot_h * v / top)
                  for j, v in enumerate(points) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                        f'points="{path}"><title>{escape(name)}</title></polyline>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>'
                 for x, y in coords]
    body += _x_labels(labels, step, height)
    return _frame(title, body, list(series), height)


def stacked_bars(title: str, labels: Sequence[str], stacks: Mapping[str, Sequence[float]],
                 *, fmt: str = "{:,.0f}", height: int = HEIGHT) -> SafeString:
    """One bar per label, stacked by series."""
    totals = [sum(stack[j] for stack in stacks.values()) for j in range(len(labels))]
    top = max(totals, default=0.0) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    bar = max(step * 0.7, 1.0)
    body = _axis(top, height, fmt)
    bases = [0.0] * len(labels)
    for i, (name, values) in enumerate(stacks.items()):
        colour = PALETTE[i % len(PALETTE)]
        for j, value in enumerate(values):
            if value <= 0:
                continue
            h = plot_h * value / top
            y = TOP + plot_h - plot_h * bases[j] / top - h
            body.append(f'<rect x="{LEFT + step * j + (step - bar) / 2:.1f}" y="{y:.1f}" '
                        f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                        f"<title>{escape(labels[j])} {escape(name)}: "
                        f"{escape(fmt.format(value))}</title></rect>")
            bases[j] += value
    body += _x_labels(labels, step, height, offset=step / 2)
    return _frame(title, body, list(stacks), height)


def hbars(title: str, rows: Sequence[tuple[str, float]], *, fmt: str = "{:,.0f}"
          ) -> SafeString:
    """Horizontal bars, one per (label, value), largest scale first."""
    height = TOP + 22 * max(len(rows), 1) + 8
    top = max((v for _, v in rows), default=0.0) or 1.0
    label_w = 190
    plot_w = WIDTH - label_w - RIGHT - 60
    body = []
    for i, (label, value) in enumerate(rows):
        y = TOP + 22 * i
        w = plot_w * value / top
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">'
                    f"{escape(label[:32])}</text><rect x=\"{label_w}\" y=\"{y + 2}\" "
                    f'width="{w:.1f}" height="15" fill="{PALETTE[0]}"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="11">'
                    f"{escape(fmt.format(value))}</text>")
    return _frame(title, body, [], height)


def _x_labels(labels: Sequence[str], step: float, height: int, offset: float = 0.0
              ) -> list[str]:
    every = max(1, len(labels) // 8)
    return [f'<text x="{LEFT + offset + step * j:.1f}" y="{height - BOTTOM + 14}" '
            f'font-size="10" text-anchor="middle">{escape(label)}</text>'
            for j, label in enumerate(labels) if j % every == 0]
