"""Is an upload a real image within limits? Decompression bombs, truncated files and non-images are
refused with a reason the buyer can act on. Also the perceptual hash used to find duplicates.

Everything here is synchronous CPU work: callers run it in a thread (`asyncio.to_thread`)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

MAX_BYTES = 15 * 1024 * 1024  # a phone screenshot is 0.2–5 MB
MAX_PIXELS = 40_000_000  # 40 MP: the largest phone screens are ~4 MP; anything far above is hostile
MAX_SIDE = 12_000
MIN_SIDE = 200  # smaller cannot show a readable review
FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
HASH_SIZE = 16  # 256-bit pHash: screenshots of one app share a layout, 64 bits are too coarse
DUPLICATE_DISTANCE = 24  # of 256 bits; re-encoded/rescaled copies of one screenshot stay far below it


class BadImage(ValueError):
    """The upload is not an image we accept; `code` picks the buyer's text, `problem` says why (Russian)."""

    def __init__(self, code: str, problem: str) -> None:
        super().__init__(problem)
        self.code = code
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    width: int
    height: int
    phash: str  # hex


def inspect(data: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[ImageInfo, Image.Image]:
    """Open, verify and fully decode `data` within the limits. Returns the info and the decoded RGB image."""
    if len(data) > max_bytes:
        raise BadImage("too_large", f"файл больше {max_bytes // (1024 * 1024)} МБ")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))  # reads the header only
        except UnidentifiedImageError:
            raise BadImage("not_image", "это не картинка") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadImage("bomb", "картинка слишком большая по числу точек") from None
        fmt = probe.format or ""
        if fmt not in FORMATS:
            raise BadImage("format", f"формат {fmt or 'неизвестен'} не подходит, нужен JPG или PNG")
        width, height = probe.size
        if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
            raise BadImage("bomb", f"картинка {width}×{height} точек — слишком большая для скриншота")
        if min(width, height) < MIN_SIDE:
            raise BadImage("too_small", f"картинка {width}×{height} точек — слишком маленькая, текст не прочитать")
        try:
            probe.verify()  # structure and checksums; the object is unusable afterwards
            image = Image.open(io.BytesIO(data))
            image.load()  # a truncated file fails here (LOAD_TRUNCATED_IMAGES stays False)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadImage("broken", "файл повреждён или обрезан") from None
    rgb = image.convert("RGB")
    digest = str(imagehash.phash(rgb, hash_size=HASH_SIZE))
    return ImageInfo(fmt, width, height, digest), rgb


def distance(a: str, b: str) -> int:
    """Hamming distance of two hex perceptual hashes (of the same size)."""
    if len(a) != len(b):
        return 1 << 16
    return bin(int(a, 16) ^ int(b, 16)).count("1")
