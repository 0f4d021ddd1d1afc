"""Line charts as inline SVG coordinates (no JavaScript, nothing fetched): pure functions."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: str  # "x,y x,y ..." for an SVG polyline
    low: int
    high: int
    start: datetime | None
    end: datetime | None
    last: int


def line_chart(series: Sequence[tuple[datetime, int]], *, width: int = 640, height: int = 160,
               pad: int = 4) -> Chart:
    """Scale (time, value) points into a width x height box, time left to right, values up."""
    if not series:
        return Chart(width, height, "", 0, 0, None, None, 0)
    times = [t.timestamp() for t, _ in series]
    values = [v for _, v in series]
    t0, t1 = times[0], times[-1]
    low, high = min(0, min(values)), max(values)
    span_t, span_v = (t1 - t0) or 1.0, (high - low) or 1
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    coords = []
    for t, v in zip(times, values, strict=True):
        x = pad + (t - t0) / span_t * inner_w if len(series) > 1 else width / 2
        y = pad + inner_h - (v - low) / span_v * inner_h
        coords.append(f"{x:.1f},{y:.1f}")
    return Chart(width, height, " ".join(coords), low, high, series[0][0], series[-1][0],
                 values[-1])
