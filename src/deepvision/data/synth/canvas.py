"""A small drawing surface for synthetic figures: supersampled PIL drawing, PNG out."""

from __future__ import annotations

import io
import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

SCALE = 2  # draw at 2x and downsample: smooth edges at little cost
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
]
COLOR_NAMES = {
    "red": (214, 39, 40),
    "blue": (31, 119, 180),
    "green": (44, 160, 44),
    "orange": (255, 127, 14),
    "purple": (148, 103, 189),
}
BLACK = (20, 20, 20)
GRID = (215, 215, 215)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size * SCALE)


Point = tuple[float, float]


class Canvas:
    """Logical coordinates in pixels of the final image; y grows downwards."""

    def __init__(self, width: int = 560, height: int = 420) -> None:
        self.width, self.height = width, height
        self.img = Image.new("RGB", (width * SCALE, height * SCALE), "white")
        self.draw = ImageDraw.Draw(self.img)

    @staticmethod
    def _s(p: Point) -> tuple[float, float]:
        return (p[0] * SCALE, p[1] * SCALE)

    def line(self, a: Point, b: Point, width: float = 2, fill=BLACK) -> None:
        self.draw.line([self._s(a), self._s(b)], fill=fill, width=max(1, round(width * SCALE)))

    def polyline(self, pts: list[Point], width: float = 2, fill=BLACK) -> None:
        self.draw.line(
            [self._s(p) for p in pts], fill=fill, width=round(width * SCALE), joint="curve"
        )

    def polygon(self, pts: list[Point], fill=None, outline=BLACK, width: float = 2) -> None:
        self.draw.polygon(
            [self._s(p) for p in pts], fill=fill, outline=outline, width=round(width * SCALE)
        )

    def rect(self, a: Point, b: Point, fill=None, outline=BLACK, width: float = 2) -> None:
        (x0, y0), (x1, y1) = self._s(a), self._s(b)
        box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        self.draw.rectangle(box, fill=fill, outline=outline, width=round(width * SCALE))

    def circle(self, c: Point, r: float, fill=None, outline=BLACK, width: float = 2) -> None:
        x, y = self._s(c)
        rs = r * SCALE
        self.draw.ellipse(
            [x - rs, y - rs, x + rs, y + rs], fill=fill, outline=outline, width=round(width * SCALE)
        )

    def dot(self, c: Point, r: float = 4, fill=BLACK) -> None:
        self.circle(c, r, fill=fill, outline=fill, width=1)

    def arc(self, c: Point, r: float, start_deg: float, end_deg: float, width: float = 2) -> None:
        """Arc from start to end, counter-clockwise in math convention (y up)."""
        x, y = self._s(c)
        rs = r * SCALE
        # PIL measures angles clockwise from +x with y down: negate and swap.
        self.draw.arc(
            [x - rs, y - rs, x + rs, y + rs],
            -end_deg,
            -start_deg,
            fill=BLACK,
            width=round(width * SCALE),
        )

    def pieslice(self, c: Point, r: float, start_deg: float, end_deg: float, fill) -> None:
        x, y = self._s(c)
        rs = r * SCALE
        self.draw.pieslice(
            [x - rs, y - rs, x + rs, y + rs],
            -end_deg,
            -start_deg,
            fill=fill,
            outline="white",
            width=2 * SCALE,
        )

    def text(self, p: Point, s: str, size: int = 18, anchor: str = "mm", fill=BLACK) -> None:
        self.draw.text(self._s(p), s, font=_font(size), anchor=anchor, fill=fill)

    def radical(self, p: Point, radicand: str, size: int = 18, coef: str = "") -> None:
        """Draw `coef√radicand` centred at p (the bundled font has no radical sign)."""
        font = _font(size)
        w_coef = font.getlength(coef) / SCALE if coef else 0.0
        w_rad = font.getlength(radicand) / SCALE
        total = w_coef + 12 + w_rad
        x = p[0] - total / 2
        y = p[1]
        if coef:
            self.text((x, y), coef, size, anchor="lm")
            x += w_coef + 1
        h = size * 0.55
        self.polyline([(x, y + 1), (x + 3, y - 1), (x + 6, y + h), (x + 10, y - h - 2)], 1.5)
        self.line((x + 10, y - h - 2), (x + 12 + w_rad, y - h - 2), 1.5)
        self.text((x + 11, y + 1), radicand, size, anchor="lm")

    def arrow(self, a: Point, b: Point, width: float = 2) -> None:
        self.line(a, b, width)
        ang = math.atan2(b[1] - a[1], b[0] - a[0])
        for d in (2.6, -2.6):
            tip = (b[0] + 10 * math.cos(ang + d), b[1] + 10 * math.sin(ang + d))
            self.line(b, tip, width)

    def png(self) -> bytes:
        # Each output pixel the mean of its SCALE x SCALE block: the anti-aliasing that
        # supersampling is for, at a tenth of the cost of a Lanczos resize.
        out = self.img.reduce(SCALE)
        buf = io.BytesIO()
        out.save(buf, format="PNG", optimize=False, compress_level=6)
        return buf.getvalue()


def polar(c: Point, r: float, deg: float) -> Point:
    """Point at angle `deg` (math convention, counter-clockwise, y up) from c."""
    rad = math.radians(deg)
    return (c[0] + r * math.cos(rad), c[1] - r * math.sin(rad))
