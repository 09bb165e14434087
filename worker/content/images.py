"""Fit any image to X's media limits: small, sRGB, metadata-free, deterministic.

`fit_for_x(data)` takes the bytes of anything Pillow can safely open (PNG, JPEG incl. CMYK,
GIF/WebP incl. animated ones, BMP, TIFF, AVIF) and returns a `FittedImage`: JPEG for opaque
images, PNG when transparency matters, no larger than `max_dimension` on the long side and no
larger than `max_bytes`, with the EXIF orientation applied and every piece of metadata
(EXIF/GPS, XMP, ICC, comments, text chunks) dropped. The same input and options always give the
same bytes and the same content-addressed file name (`yyyy/mm/<sha256-16>.<ext>`), so a retried
upload with upsert is harmless.

Speed: the image is shrunk while it is decoded where the format allows it (JPEG DCT scaling via
`draft`), otherwise by an integer box `reduce` before the final resample, and the colour
management and orientation steps run on the small image. Pillow releases the GIL while
decoding, resampling and encoding, so `fit_for_x_async` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from PIL import Image, ImageCms, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DIMENSION",
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_MAX_PIXELS",
    "X_IMAGE_MAX_BYTES",
    "FittedImage",
    "ImageRejected",
    "OutputFormat",
    "fit_for_x",
    "fit_for_x_async",
]

#: X's limit for a still image (PNG/JPEG/WebP) uploaded through the media endpoint.
X_IMAGE_MAX_BYTES = 5 * 1024 * 1024
#: What we aim for by default: well below X's limit (and below the bucket's 5 MiB limit).
DEFAULT_MAX_BYTES = 3 * 1024 * 1024
DEFAULT_MAX_DIMENSION = 2048
#: Decoded size limit; above it the input is treated as a decompression bomb.
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_INPUT_BYTES = 50 * 1024 * 1024
DEFAULT_JPEG_QUALITY = 88

OutputFormat = Literal["auto", "jpeg", "png"]

# Formats we decode. Everything else (EPS needs Ghostscript, PSD, ICO, ...) is refused before
# any decoder runs: a smaller attack surface for bytes that came from the network.
# (MPO, the multi-picture JPEG from cameras, is opened by the JPEG plugin.)
Image.init()
_INPUT_FORMATS = tuple(
    f for f in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "AVIF") if f in Image.OPEN
)
_JPEG_QUALITY_STEPS = (80, 72, 64, 56)
_MIN_DIMENSION = 64
_SHRINK_SAFETY = 0.92

_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageRejected(ValueError):
    """The input cannot become a tweet image (not an image, unsafe, corrupt, or cannot fit)."""


@dataclass(frozen=True, slots=True)
class FittedImage:
    """An image ready for X: encoded bytes plus what an uploader needs to know about them."""

    data: bytes
    mime: str
    width: int
    height: int
    filename: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return self.filename.rsplit(".", 1)[-1]


def fit_for_x(
    data: bytes,
    *,
    max_dimension: int = DEFAULT_MAX_DIMENSION,
    max_bytes: int = DEFAULT_MAX_BYTES,
    output: OutputFormat = "auto",
    when: date | None = None,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> FittedImage:
    """Return `data` re-encoded to fit X's image limits.

    `output="auto"` gives PNG when the image has visible transparency and JPEG otherwise;
    "jpeg" flattens transparency onto white; "png" always keeps PNG. `when` (default: today,
    UTC) only feeds the `yyyy/mm/` part of the file name.

    Raises `ImageRejected` for empty, oversized, unrecognised, unsupported, corrupt or
    too-many-pixel (decompression bomb) input, and when the image cannot be brought under
    `max_bytes` without shrinking below 64 px.
    """
    if max_dimension < _MIN_DIMENSION:
        raise ValueError(f"max_dimension must be at least {_MIN_DIMENSION}")
    if not 1024 <= max_bytes <= X_IMAGE_MAX_BYTES:
        raise ValueError(f"max_bytes must be between 1024 and {X_IMAGE_MAX_BYTES} (X's limit)")
    if not 1 <= jpeg_quality <= 95:
        raise ValueError("jpeg_quality must be between 1 and 95")
    if not data:
        raise ImageRejected("empty input: no image bytes")
    if len(data) > max_input_bytes:
        raise ImageRejected(f"input is {len(data)} bytes; the limit is {max_input_bytes}")

    try:
        img = _open(data, max_pixels)
        orientation = _orientation(img)
        icc_profile = img.info.get("icc_profile")
        img = _decode_scaled(img, max_dimension)
        img = _to_rgb(img, icc_profile if isinstance(icc_profile, bytes) else None)
        if orientation in _TRANSPOSE_FOR_ORIENTATION:
            img = img.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageRejected(f"corrupt or unsupported image: {exc}") from exc

    keep_png = output == "png" or (output == "auto" and img.mode == "RGBA")
    if keep_png:
        encoded, img = _encode_png_within(img, max_bytes)
        mime, ext = "image/png", "png"
    else:
        if img.mode == "RGBA":
            img = _flatten(img)
        encoded, img = _encode_jpeg_within(img, max_bytes, jpeg_quality)
        mime, ext = "image/jpeg", "jpg"

    day = when or datetime.now(UTC).date()
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    return FittedImage(
        data=encoded,
        mime=mime,
        width=img.width,
        height=img.height,
        filename=f"{day:%Y/%m}/{digest}.{ext}",
    )


async def fit_for_x_async(
    data: bytes,
    *,
    max_dimension: int = DEFAULT_MAX_DIMENSION,
    max_bytes: int = DEFAULT_MAX_BYTES,
    output: OutputFormat = "auto",
    when: date | None = None,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> FittedImage:
    """`fit_for_x` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(
        fit_for_x,
        data,
        max_dimension=max_dimension,
        max_bytes=max_bytes,
        output=output,
        when=when,
        jpeg_quality=jpeg_quality,
        max_pixels=max_pixels,
        max_input_bytes=max_input_bytes,
    )


# -- decoding --------------------------------------------------------------------------------


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse bombs before any pixel is decoded."""
    # Pillow's own bomb guard (a warning above ~89 MP, an error above twice that) stays on;
    # our limit below is stricter by default. No warnings.catch_warnings(): it is not
    # thread-safe, and this runs in worker threads.
    try:
        img = Image.open(io.BytesIO(data), formats=_INPUT_FORMATS)
    except UnidentifiedImageError as exc:
        raise ImageRejected(
            "not a supported image (expected PNG, JPEG, GIF, WebP, BMP, TIFF or AVIF)"
        ) from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected(f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(
            f"decompression bomb refused: {width}x{height} is {width * height} pixels, "
            f"the limit is {max_pixels}"
        )
    # Animated GIF/WebP/PNG: Image.open is positioned on the first frame, which is what we
    # use. (No `n_frames`: for GIF it walks, and decodes, every frame.)
    return img


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1
    return value if isinstance(value, int) else 1


def _target_size(size: tuple[int, int], max_dimension: int) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if longest <= max_dimension:
        return width, height
    scale = max_dimension / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode_scaled(img: Image.Image, max_dimension: int) -> Image.Image:
    """Decode (as small as the decoder allows) and resample to fit `max_dimension`."""
    target = _target_size(img.size, max_dimension)
    if img.format in ("JPEG", "MPO") and target != img.size:
        # DCT-domain scaling by 1/2, 1/4 or 1/8 while decoding: never below `target`.
        img.draft(img.mode, target)
    img.load()

    img = _resizable(img)
    if img.size != target:
        # reducing_gap=1.0: integer box reduction down to the nearest multiple, then one
        # Lanczos pass. It is the fast path for big inputs (a 4096² → 2048² reduction is a
        # single 2×2 box filter) at a quality indistinguishable after X's own re-encode.
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=1.0)
    return img


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _resizable(img: Image.Image) -> Image.Image:
    """Bring exotic modes to one Pillow resamples properly (and as little work as possible)."""
    mode = img.mode
    if mode in ("RGB", "L") and "transparency" in img.info:
        return img.convert("RGBA")  # a tRNS colour key: real transparency
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return img
    if mode in ("RGBa", "La"):
        return img.convert(mode[0:-1] + "A")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_bit_depth_to_l(img)
    if mode == "1":
        return img.convert("L")
    # P, PA, YCbCr, LAB, HSV, ...: palette images must not be resampled as indices.
    return img.convert("RGBA" if _has_alpha(img) else "RGB")


def _high_bit_depth_to_l(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit greyscale to 8 bit by scaling, not clipping (Pillow's convert clips)."""
    if img.mode == "F":
        low, high = img.getextrema()
        if isinstance(low, float) and isinstance(high, float) and low >= 0.0 and high <= 1.0:
            return img.point(lambda v: v * 255.0).convert("L")
        return img.convert("L")
    as_int = img.convert("I") if img.mode != "I" else img
    _, high = as_int.getextrema()
    if isinstance(high, int) and high > 255:
        as_int = as_int.point(lambda v: v * (1 / 256))
    return as_int.convert("L")


# -- colour ----------------------------------------------------------------------------------


def _to_rgb(img: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Return an RGB or RGBA image in sRGB; drop an alpha channel that is fully opaque."""
    alpha: Image.Image | None = None
    if img.mode in ("RGBA", "LA"):
        alpha = img.getchannel("A")
        if alpha.getextrema() == (255, 255):
            alpha = None
        img = img.convert("RGB" if img.mode == "RGBA" else "L")

    if icc_profile:
        img = _icc_to_srgb(img, icc_profile)
    if img.mode != "RGB":
        # CMYK without a usable profile, L, ...: Pillow's conversion formulas.
        img = img.convert("RGB")

    if alpha is not None:
        img.putalpha(alpha)
    # A fresh `info` so no encoder can pick up EXIF, XMP, ICC, comments or text chunks.
    img.info = {}
    return img


def _icc_to_srgb(img: Image.Image, icc_profile: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        description = ImageCms.getProfileDescription(source) or ""
        if img.mode == "RGB" and "srgb" in description.lower():
            return img
        converted = ImageCms.profileToProfile(
            img,
            source,
            _SRGB_PROFILE,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # Broken profile or one that does not match the pixel mode: plain conversion instead.
        return img
    return converted if converted is not None else img


def _flatten(img: Image.Image) -> Image.Image:
    background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(img, mask=img.getchannel("A"))
    return background


# -- encoding --------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def _shrunk(img: Image.Image, produced: int, max_bytes: int) -> Image.Image:
    """Scale so the encoded size should drop under `max_bytes` (bytes ~ pixels)."""
    scale = min(0.9, max(0.5, math.sqrt(max_bytes / produced) * _SHRINK_SAFETY))
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if max(size) < _MIN_DIMENSION:
        raise ImageRejected(f"cannot fit the image under {max_bytes} bytes")
    return img.resize(size, Image.Resampling.LANCZOS)


def _encode_jpeg_within(
    img: Image.Image, max_bytes: int, quality: int
) -> tuple[bytes, Image.Image]:
    qualities = [quality, *(q for q in _JPEG_QUALITY_STEPS if q < quality)]
    while True:
        encoded = b""
        for q in qualities:
            encoded = _encode(img, "JPEG", quality=q, optimize=True)
            if len(encoded) <= max_bytes:
                return encoded, img
        img = _shrunk(img, len(encoded), max_bytes)


def _encode_png_within(img: Image.Image, max_bytes: int) -> tuple[bytes, Image.Image]:
    while True:
        encoded = _encode(img, "PNG", compress_level=6)
        if len(encoded) <= max_bytes:
            return encoded, img
        img = _shrunk(img, len(encoded), max_bytes)
