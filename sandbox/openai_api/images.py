"""Images the stand-in generates: size parsing and the size rules per model, and
`render_image`, a real image (PNG by default) of the requested size, deterministic from the
prompt and cached, with the output token counts gpt-image models report.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from collections import OrderedDict
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from sandbox.openai_api.catalog import (
    FLEXIBLE_SIZE_IMAGE_MODELS,
    MAX_IMAGE_EDGE,
    MAX_IMAGE_PIXELS,
    MIN_IMAGE_PIXELS,
    STANDARD_IMAGE_SIZES,
)
from sandbox.openai_api.errors import ApiError
from sandbox.openai_api.params import _invalid_type, _invalid_value

_OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 6240, "max": 8320}
_IMAGE_CACHE: OrderedDict[tuple[str, int, int, int, str], bytes] = OrderedDict()
_IMAGE_CACHE_SIZE = 64


def parse_size(size: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", size)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _check_size(model: str, size: Any) -> tuple[int, int]:
    if size is None or size == "auto":
        return 1024, 1024
    if not isinstance(size, str):
        raise _invalid_type("size", "a string", size)
    if model not in FLEXIBLE_SIZE_IMAGE_MODELS:
        if size not in STANDARD_IMAGE_SIZES:
            raise _invalid_value("size", size, STANDARD_IMAGE_SIZES)
        dims = parse_size(size)
        assert dims is not None
        return dims
    dims = parse_size(size)
    if dims is None:
        raise ApiError(
            400,
            f"Invalid size '{size}'. Expected 'auto' or a WIDTHxHEIGHT string such as '1536x864'.",
            param="size",
            code="invalid_value",
        )
    width, height = dims
    problem = None
    if width % 16 or height % 16:
        problem = "width and height must both be divisible by 16"
    elif max(width, height) > 3 * min(width, height):
        problem = "the aspect ratio must be between 1:3 and 3:1"
    elif max(width, height) > MAX_IMAGE_EDGE:
        problem = f"the longest edge must be at most {MAX_IMAGE_EDGE} pixels"
    elif width * height > MAX_IMAGE_PIXELS:
        problem = f"the image must have at most {MAX_IMAGE_PIXELS} pixels"
    elif width * height < MIN_IMAGE_PIXELS:
        problem = f"the image must have at least {MIN_IMAGE_PIXELS} pixels"
    if problem:
        raise ApiError(
            400, f"Invalid size '{size}': {problem}.", param="size", code="invalid_value"
        )
    return width, height


def render_image(prompt: str, width: int, height: int, index: int = 0, fmt: str = "png") -> bytes:
    """A deterministic picture for ``prompt``: same prompt, size and index, same bytes."""
    key = (prompt, width, height, index, fmt)
    cached = _IMAGE_CACHE.get(key)
    if cached is not None:
        _IMAGE_CACHE.move_to_end(key)
        return cached
    seed = hashlib.sha256(f"{prompt}\x00{width}x{height}\x00{index}".encode()).digest()
    rng = random.Random(seed)

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    top, bottom = colour(), colour()
    mask = Image.linear_gradient("L").resize((width, height))
    img = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask
    )
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(5, 10)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width - 1, x0 + rng.randint(width // 12, width // 3))
        y1 = min(height - 1, y0 + rng.randint(height // 12, height // 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour())
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour())
    font = ImageFont.load_default(size=max(12, min(width, height) // 24))
    label = f"SANDBOX {seed.hex()[:8]}"
    draw.rectangle((0, 0, width, max(20, min(width, height) // 14)), fill=(0, 0, 0))
    draw.text((8, 4), label, fill=(255, 255, 255), font=font)
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=90)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=90)
    else:
        img.save(buf, format="PNG")
    data = buf.getvalue()
    _IMAGE_CACHE[key] = data
    if len(_IMAGE_CACHE) > _IMAGE_CACHE_SIZE:
        _IMAGE_CACHE.popitem(last=False)
    return data
