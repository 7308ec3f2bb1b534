"""Inline SVG for the shared page. Every piece of text is escaped: labels come from user data."""
from xml.sax.saxutils import escape, quoteattr

from .layout import Dot, Line, Rect, Text

ANCHORS = {"start": "start", "middle": "middle", "end": "end"}


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _shape(shape) -> str:
    if isinstance(shape, Rect):
        title = f"<title>{escape(shape.title)}</title>" if shape.title else ""
        return (
            f'<rect x="{_number(shape.x)}" y="{_number(shape.y)}" width="{_number(shape.width)}" '
            f'height="{_number(shape.height)}" fill="{shape.fill}">{title}</rect>'
        )
    if isinstance(shape, Line):
        points = " ".join(f"{_number(x)},{_number(y)}" for x, y in shape.points)
        return f'<polyline points="{points}" fill="none" stroke="{shape.stroke}" stroke-width="{_number(shape.width)}" stroke-linejoin="round"/>'
    if isinstance(shape, Dot):
        title = f"<title>{escape(shape.title)}</title>" if shape.title else ""
        return f'<circle cx="{_number(shape.x)}" cy="{_number(shape.y)}" r="{_number(shape.radius)}" fill="{shape.fill}">{title}</circle>'
    if isinstance(shape, Text):
        weight = ' font-weight="600"' if shape.bold else ""
        return (
            f'<text x="{_number(shape.x)}" y="{_number(shape.y)}" font-size="{_number(shape.size)}" '
            f'text-anchor="{ANCHORS[shape.anchor]}" fill="{shape.fill}"{weight}>{escape(shape.text)}</text>'
        )
    raise TypeError(f"Cannot draw {shape!r}")


def render_svg(shapes: list, width: int, height: int, label: str) -> str:
    body = "".join(_shape(shape) for shape in shapes)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="insight-chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label={quoteattr(label)} font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">'
        f"{body}</svg>"
    )
