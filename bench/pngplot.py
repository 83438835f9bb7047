"""Line charts as PNG with numpy and zlib only: stacked panels, a title each, min/max labels.

The soak benchmark draws a handful of series a minute apart; a plotting library (matplotlib,
~40 MB with its fonts) is not a dependency of quantops for that. Text uses a 3x5 pixel font,
drawn at 2x scale.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# 3x5 glyphs, rows top to bottom, 3 bits each (MSB left).
_FONT = {
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7),
    "3": (7, 1, 7, 1, 7), "4": (5, 5, 7, 1, 1), "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7),
    "7": (7, 1, 1, 1, 1), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7), ".": (0, 0, 0, 0, 2),
    "-": (0, 0, 7, 0, 0), "#": (5, 7, 5, 7, 5), "+": (0, 2, 7, 2, 0), "=": (0, 7, 0, 7, 0),
    "/": (1, 1, 2, 4, 4), ":": (0, 2, 0, 2, 0), "%": (5, 1, 2, 4, 5),
    "(": (1, 2, 2, 2, 1), ")": (4, 2, 2, 2, 4), " ": (0, 0, 0, 0, 0), "_": (0, 0, 0, 0, 7),
    "A": (2, 5, 7, 5, 5), "B": (6, 5, 6, 5, 6), "C": (3, 4, 4, 4, 3), "D": (6, 5, 5, 5, 6),
    "E": (7, 4, 6, 4, 7), "F": (7, 4, 6, 4, 4), "G": (3, 4, 5, 5, 3), "H": (5, 5, 7, 5, 5),
    "I": (7, 2, 2, 2, 7), "J": (1, 1, 1, 5, 2), "K": (5, 5, 6, 5, 5), "L": (4, 4, 4, 4, 7),
    "M": (5, 7, 7, 5, 5), "N": (6, 5, 5, 5, 5), "O": (2, 5, 5, 5, 2), "P": (6, 5, 6, 4, 4),
    "Q": (2, 5, 5, 6, 3), "R": (6, 5, 6, 5, 5), "S": (3, 4, 2, 1, 6), "T": (7, 2, 2, 2, 2),
    "U": (5, 5, 5, 5, 7), "V": (5, 5, 5, 5, 2), "W": (5, 5, 7, 7, 5), "X": (5, 5, 2, 5, 5),
    "Y": (5, 5, 2, 2, 2), "Z": (7, 1, 2, 4, 7),
}
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (210, 210, 210)


@dataclass
class Panel:
    title: str
    series: dict[str, Sequence[float]] = field(default_factory=dict)


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.px = np.full((height, width, 3), 255, dtype=np.uint8)

    def text(self, x: int, y: int, s: str, color: tuple[int, int, int] = BLACK,
             scale: int = 2) -> int:
        """Draw ``s`` with its top-left at (x, y); returns the x after it."""
        for ch in s.upper():
            rows = _FONT.get(ch, _FONT[" "])
            for r, bits in enumerate(rows):
                for c in range(3):
                    if bits >> (2 - c) & 1:
                        self.rect(x + c * scale, y + r * scale, scale, scale, color)
            x += 4 * scale
        return x

    def rect(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        self.px[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = color

    def line(self, x0: float, y0: float, x1: float, y1: float,
             color: tuple[int, int, int]) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0), 1)) * 2
        xs = np.rint(np.linspace(x0, x1, steps)).astype(int)
        ys = np.rint(np.linspace(y0, y1, steps)).astype(int)
        h, w, _ = self.px.shape
        ok = (xs >= 0) & (xs < w - 1) & (ys >= 0) & (ys < h - 1)
        for dx, dy in ((0, 0), (1, 0), (0, 1)):  # two pixels thick
            self.px[ys[ok] + dy, xs[ok] + dx] = color

    def png(self) -> bytes:
        h, w, _ = self.px.shape
        raw = b"".join(b"\x00" + self.px[y].tobytes() for y in range(h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _label(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def draw(path: Path, panels: list[Panel], *, x_label: str = "minute", width: int = 1000,
         panel_height: int = 190) -> Path:
    """One panel per entry, series left to right on a shared x (their index)."""
    c = Canvas(width, panel_height * len(panels) + 10)
    left, right, top, bottom = 90, 20, 34, 26
    for i, panel in enumerate(panels):
        y0 = i * panel_height
        plot_w, plot_h = width - left - right, panel_height - top - bottom
        c.text(left, y0 + 8, panel.title)
        values = [v for s in panel.series.values() for v in s if v == v]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        lo = min(lo, 0.0)
        hi = hi if hi > lo else lo + 1.0
        n = max((len(s) for s in panel.series.values()), default=1)
        c.rect(left, y0 + top, plot_w, 1, GREY)
        c.rect(left, y0 + top + plot_h, plot_w, 1, BLACK)
        c.rect(left, y0 + top, 1, plot_h, BLACK)
        c.text(4, y0 + top - 4, _label(hi))
        c.text(4, y0 + top + plot_h - 8, _label(lo))
        c.text(left, y0 + top + plot_h + 6, f"{x_label} 0")
        c.text(left + plot_w - 60, y0 + top + plot_h + 6, str(n - 1))
        legend_x = left + 300
        for k, (name, series) in enumerate(panel.series.items()):
            color = PALETTE[k % len(PALETTE)]
            legend_x = c.text(legend_x, y0 + 8, name, color) + 16
            pts = [(left + plot_w * j / max(1, n - 1),
                    y0 + top + plot_h * (1 - (v - lo) / (hi - lo)))
                   for j, v in enumerate(series) if v == v]
            for (xa, ya), (xb, yb) in itertools.pairwise(pts):
                c.line(xa, ya, xb, yb, color)
    path.write_bytes(c.png())
    return path
