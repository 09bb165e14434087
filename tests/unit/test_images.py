"""worker.content.images: fitting arbitrary images to X's limits."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import time
import zlib
from datetime import date

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw

from worker.content.images import (
    DEFAULT_MAX_BYTES,
    X_IMAGE_MAX_BYTES,
    FittedImage,
    ImageRejected,
    fit_for_x,
    fit_for_x_async,
)

DAY = date(2026, 5, 17)


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def reopen(fitted: FittedImage) -> Image.Image:
    img = Image.open(io.BytesIO(fitted.data))
    img.load()
    return img


def photo_like(size: tuple[int, int]) -> Image.Image:
    """Smooth gradients plus noise: compresses like a photo, not like a flat test card."""
    grad = Image.linear_gradient("L").resize(size)
    low_res = (max(1, size[0] // 4), max(1, size[1] // 4))
    noise = Image.effect_noise(low_res, 40).resize(size, Image.Resampling.BILINEAR)
    return Image.merge(
        "RGB",
        (grad, grad.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ImageChops.add(noise, grad, 2)),
    )


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims `width`x`height`: the classic decompression bomb shape."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _tag(body: bytes) -> bytes:
    return body + b"\0" * (-len(body) % 4)


def rgb_icc_profile(
    description: str,
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    gamma: float = 2.2,
) -> bytes:
    """A minimal ICC v2 matrix/TRC RGB profile (no ICC files ship on these machines)."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)

    text = description.encode() + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 70
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256))
    tags = [
        (b"desc", _tag(desc)),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(*red)),
        (b"gXYZ", xyz(*green)),
        (b"bXYZ", xyz(*blue)),
        (b"rTRC", _tag(curve)),
        (b"gTRC", _tag(curve)),
        (b"bTRC", _tag(curve)),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", offset + len(data))
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


# sRGB's primaries, adapted to the D50 profile connection space.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def assert_clean(fitted: FittedImage) -> Image.Image:
    """Common invariants of every output: limits, format, no metadata, honest dimensions."""
    assert fitted.size <= DEFAULT_MAX_BYTES < X_IMAGE_MAX_BYTES
    img = reopen(fitted)
    assert (img.width, img.height) == (fitted.width, fitted.height)
    assert max(img.size) <= 2048
    assert fitted.mime == {"JPEG": "image/jpeg", "PNG": "image/png"}[img.format or ""]
    assert img.mode in ("RGB", "RGBA")
    assert len(img.getexif()) == 0
    assert "icc_profile" not in img.info
    assert "exif" not in img.info
    assert "xmp" not in img.info
    assert "comment" not in img.info
    return img


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    return encode(photo_like((4096, 4096)), "PNG", compress_level=1)


def test_huge_png_is_scaled_to_2048(huge_png: bytes) -> None:
    """How fast it is lives in bench/generation.py (a ratio against a naive resize)."""
    fitted = fit_for_x(huge_png, when=DAY)
    img = assert_clean(fitted)
    assert (fitted.width, fitted.height) == (2048, 2048)
    assert fitted.mime == "image/jpeg"
    assert img.format == "JPEG"


def test_aspect_ratio_kept_and_max_dimension_configurable() -> None:
    data = encode(photo_like((3000, 1500)), "JPEG", quality=90)
    fitted = fit_for_x(data, when=DAY)
    assert (fitted.width, fitted.height) == (2048, 1024)
    smaller = fit_for_x(data, max_dimension=1000, when=DAY)
    assert (smaller.width, smaller.height) == (1000, 500)
    small_input = encode(photo_like((640, 480)), "PNG")
    untouched = fit_for_x(small_input, when=DAY)
    assert (untouched.width, untouched.height) == (640, 480)  # never upscaled


def test_cmyk_jpeg_becomes_rgb_with_the_right_colour() -> None:
    # Pure magenta + yellow ink = red.
    cmyk = Image.new("CMYK", (320, 200), (0, 255, 255, 0))
    data = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    fitted = fit_for_x(data, when=DAY)
    img = assert_clean(fitted)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((160, 100))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60, (r, g, b)


def test_animated_gif_keeps_the_first_frame() -> None:
    frames = [Image.new("RGB", (120, 80), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3  # type: ignore[attr-defined]
    fitted = fit_for_x(data, when=DAY)
    img = assert_clean(fitted)
    assert fitted.mime == "image/jpeg"
    r, g, b = img.getpixel((60, 40))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50, (r, g, b)


def test_animated_webp_keeps_the_first_frame() -> None:
    frames = [Image.new("RGB", (120, 80), c) for c in ((0, 0, 255), (255, 0, 0))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    fitted = fit_for_x(data, when=DAY)
    img = assert_clean(fitted)
    r, g, b = img.getpixel((60, 40))  # type: ignore[misc]
    assert b > 200 and r < 50, (r, g, b)


def test_png_with_alpha_stays_png_with_transparency() -> None:
    img = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((50, 50, 350, 250), fill=(10, 120, 240, 255))
    fitted = fit_for_x(encode(img, "PNG"), when=DAY)
    out = assert_clean(fitted)
    assert fitted.mime == "image/png" and fitted.filename.endswith(".png")
    assert out.mode == "RGBA"
    assert out.getpixel((5, 5))[3] == 0  # type: ignore[index]
    assert out.getpixel((200, 150)) == (10, 120, 240, 255)


def test_palette_gif_transparency_and_forced_jpeg_flatten_on_white() -> None:
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((100, 0, 199, 99), fill=(255, 0, 0, 255))
    palette_png = encode(img.convert("P"), "PNG")  # P mode with a transparent index
    as_png = assert_clean(fit_for_x(palette_png, when=DAY))
    assert as_png.mode == "RGBA" and as_png.getpixel((10, 10))[3] == 0  # type: ignore[index]

    flattened = fit_for_x(encode(img, "PNG"), output="jpeg", when=DAY)
    out = assert_clean(flattened)
    assert flattened.mime == "image/jpeg"
    assert all(c > 245 for c in out.getpixel((10, 10)))  # type: ignore[union-attr]


def test_fully_opaque_rgba_becomes_jpeg() -> None:
    img = photo_like((500, 400)).convert("RGBA")
    fitted = fit_for_x(encode(img, "PNG"), when=DAY)
    assert fitted.mime == "image/jpeg"
    assert_clean(fitted)


def test_jpeg_exif_orientation_applied_and_all_metadata_stripped() -> None:
    img = Image.new("RGB", (300, 200), (255, 255, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 59, 39), fill=(255, 0, 0))  # stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    exif[0x010F] = "ChirpCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 31.0), 3: "E", 4: (4.0, 53.0, 28.0)})
    data = encode(img, "JPEG", exif=exif, comment=b"secret-comment", quality=95)
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(0x8825)[2] == (52.0, 22.0, 31.0)  # the input does carry GPS

    fitted = fit_for_x(data, when=DAY)
    out = assert_clean(fitted)
    assert (fitted.width, fitted.height) == (200, 300)  # rotated
    # Stored top-left ends up top-right after a 90° clockwise rotation.
    r, g, b = out.getpixel((200 - 10, 10))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60
    assert all(c > 200 for c in out.getpixel((10, 10)))  # type: ignore[union-attr]
    for needle in (b"Exif", b"ChirpCam", b"secret-comment", b"GPS"):
        assert needle not in fitted.data


def test_icc_profile_dropped_after_conversion() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo_like((300, 200)), "PNG", icc_profile=srgb)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile")
    assert_clean(fit_for_x(data, when=DAY))


def test_non_srgb_profile_is_converted_to_srgb() -> None:
    # A profile whose "red" channel is sRGB's green primary: pure red pixels must come out green.
    swapped = rgb_icc_profile("Swapped primaries (test)", SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    data = encode(Image.new("RGB", (120, 80), (255, 0, 0)), "PNG", icc_profile=swapped)
    out = assert_clean(fit_for_x(data, when=DAY))
    r, g, b = out.getpixel((60, 40))  # type: ignore[misc]
    assert g > 220 and r < 40 and b < 40, (r, g, b)
    # A broken profile is ignored rather than fatal.
    broken = encode(Image.new("RGB", (40, 40), (255, 0, 0)), "PNG", icc_profile=b"garbage" * 20)
    r, g, b = assert_clean(fit_for_x(broken, when=DAY)).getpixel((20, 20))  # type: ignore[misc]
    assert r > 240 and g < 20


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    img = Image.new("I;16", (64, 64), 40000)
    fitted = fit_for_x(encode(img, "PNG"), when=DAY)
    out = assert_clean(fitted)
    r, g, b = out.getpixel((32, 32))  # type: ignore[misc]
    assert abs(r - 156) <= 3 and r == g == b


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"definitely not an image",
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
        b"\x89PNG\r\n\x1a\n",
    ],
    ids=["empty", "text", "pdf", "png-signature-only"],
)
def test_non_images_rejected(data: bytes) -> None:
    with pytest.raises(ImageRejected):
        fit_for_x(data)


def test_unsupported_format_and_truncated_image_rejected() -> None:
    ico = encode(Image.new("RGB", (32, 32), (1, 2, 3)), "ICO")
    with pytest.raises(ImageRejected, match="not a supported image"):
        fit_for_x(ico)
    png = encode(photo_like((400, 400)), "PNG")
    with pytest.raises(ImageRejected, match="corrupt"):
        fit_for_x(png[: len(png) // 2])


def test_decompression_bombs_rejected_before_decoding() -> None:
    bomb = png_header_only(8000, 8000)  # 64 MP claimed in a few hundred bytes
    assert len(bomb) < 1000
    started = time.perf_counter()
    with pytest.raises(ImageRejected, match="decompression bomb"):
        fit_for_x(bomb)
    assert time.perf_counter() - started < 0.1  # refused from the header alone
    with pytest.raises(ImageRejected, match="decompression bomb"):
        fit_for_x(png_header_only(100_000, 100_000))  # Pillow's own hard limit
    with pytest.raises(ImageRejected, match="decompression bomb"):
        fit_for_x(encode(photo_like((200, 200)), "PNG"), max_pixels=10_000)


def test_input_byte_limit() -> None:
    with pytest.raises(ImageRejected, match="limit"):
        fit_for_x(b"\0" * 2048, max_input_bytes=1024)


def test_incompressible_input_stepped_down_under_byte_limit() -> None:
    noise = Image.merge("RGB", [Image.effect_noise((800, 800), 120) for _ in range(3)])
    data = encode(noise, "PNG", compress_level=0)
    fitted = fit_for_x(data, max_bytes=100_000, when=DAY)
    assert fitted.size <= 100_000
    assert fitted.width < 800  # quality alone was not enough: dimensions went down too
    assert fitted.width == fitted.height
    noisy_alpha = noise.convert("RGBA")
    noisy_alpha.putalpha(128)
    as_png = fit_for_x(encode(noisy_alpha, "PNG", compress_level=0), max_bytes=150_000)
    assert as_png.mime == "image/png" and as_png.size <= 150_000
    assert as_png.width < 800


def test_output_and_name_are_deterministic() -> None:
    data = encode(photo_like((900, 600)), "PNG")
    first = fit_for_x(data, when=DAY)
    second = fit_for_x(data, when=DAY)
    assert first == second
    assert re.fullmatch(r"2026/05/[0-9a-f]{16}\.jpg", first.filename)
    assert first.filename == f"2026/05/{hashlib.sha256(first.data).hexdigest()[:16]}.jpg"
    other = fit_for_x(encode(photo_like((901, 600)), "PNG"), when=DAY)
    assert other.filename != first.filename


async def test_async_variant_matches_sync() -> None:
    data = encode(photo_like((500, 500)), "PNG")
    assert await fit_for_x_async(data, when=DAY) == fit_for_x(data, when=DAY)


def test_options_validated() -> None:
    data = encode(photo_like((100, 100)), "PNG")
    with pytest.raises(ValueError, match="X's limit"):
        fit_for_x(data, max_bytes=X_IMAGE_MAX_BYTES + 1)
    with pytest.raises(ValueError, match="max_dimension"):
        fit_for_x(data, max_dimension=10)
