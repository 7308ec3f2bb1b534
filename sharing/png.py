"""The `.png` of a shared insight, drawn with Pillow from the same layout as the SVG."""
import io
import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from .layout import BACKGROUND, Dot, Line, Rect, Text

ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}


@lru_cache(maxsize=32)
def _font(size: int):
    return ImageFont.load_default(size=size)


def render_png(shapes: list, width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        if isinstance(shape, Rect):
            draw.rectangle([shape.x, shape.y, shape.x + shape.width, shape.y + shape.height], fill=shape.fill)
        elif isinstance(shape, Line):
            draw.line(shape.points, fill=shape.stroke, width=max(math.ceil(shape.width), 1), joint="curve")
        elif isinstance(shape, Dot):
            r = shape.radius
            draw.ellipse([shape.x - r, shape.y - r, shape.x + r, shape.y + r], fill=shape.fill)
        elif isinstance(shape, Text):
            draw.text(
                (shape.x, shape.y),
                shape.text,
                fill=shape.fill,
                font=_font(max(round(shape.size), 6)),
                anchor=ANCHORS[shape.anchor],
            )
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()
