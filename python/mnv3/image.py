"""Images for classification: files, PIL images and numpy arrays as 8-bit pixels.

Decoding follows the Swift package's rules, the same for every format: grayscale stays one
channel (the C preprocessing replicates it), an alpha channel is dropped (not composited),
16-bit samples are reduced to 8 bits, palettes are expanded. Files are recognised by
content: PNG and JPEG are decoded by Pillow, binary PPM (``P6``) and PGM (``P5``) here.

Decoding is bounded: the size a file claims is checked against a pixel limit
(:data:`DEFAULT_MAX_PIXELS` unless raised) right after its header is read, before the image
is decoded, and no side may be longer than 65535 pixels. Every failure is an
:class:`mnv3.Error` naming the file: :class:`~mnv3.FileIOError` (missing, unreadable, a
directory, a FIFO), :class:`~mnv3.BadImageError` (empty, truncated, corrupt),
:class:`~mnv3.UnsupportedImageFormatError`, :class:`~mnv3.ImageTooLargeError`.

Resizing and normalisation are not done here but by the C library's
``mnv3_preprocess_image`` (:meth:`mnv3.Session.preprocess`).
"""
from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Optional, Tuple, Union

import numpy as np

from .errors import (BadImageError, FileIOError, ImageTooLargeError, InvalidArgumentError,
                     OutOfMemoryError, ShapeError, UnsupportedImageFormatError)

if TYPE_CHECKING:  # pragma: no cover
    import PIL.Image

#: The pixel limit used when none is given: 16 Mi pixels (4096 x 4096, or a 12- or
#: 16-megapixel photo), as the Swift package and the ``mnv3`` command-line tool.
DEFAULT_MAX_PIXELS = 1 << 24
#: The longest side an image file may claim.
MAX_DIMENSION = 65535

PathLike = Union[str, "os.PathLike[str]"]
#: What :meth:`mnv3.Session.classify` and :func:`read_image` take: a file path, the bytes of
#: an image file, a PIL image, or an array of 8-bit pixels ``[H, W]``, ``[H, W, 1]``,
#: ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA, alpha ignored).
ImageLike = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray,
                  "PIL.Image.Image"]


@dataclass(frozen=True)
class ImageInfo:
    """The size and kind of an image, as its source says."""

    width: int
    height: int
    #: ``"png"``, ``"jpeg"``, ``"ppm"``, ``"pgm"``, or ``"raw"`` for pixels given directly.
    format: str
    #: Channels in the source: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    source_channels: int


def _check_limit(max_pixels: int) -> None:
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < 1:
        raise InvalidArgumentError(f"the pixel limit must be an integer of at least 1 "
                                   f"(got {max_pixels!r})")


def _too_large(name: str, kind: str, width: int, height: int, max_pixels: int) -> None:
    if width > MAX_DIMENSION or height > MAX_DIMENSION:
        raise ImageTooLargeError(f"{name}: {kind} image is too large: it claims {width}x{height} "
                                 f"pixels, and no side may be longer than {MAX_DIMENSION}")
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{name}: {kind} image is too large: it claims {width}x{height} "
                                 f"= {width * height} pixels, more than the limit of "
                                 f"{max_pixels} pixels")


def _sniff(head: bytes) -> str:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:2] == b"P6":
        return "ppm"
    if head[:2] == b"P5":
        return "pgm"
    return ""


def _open_file(path: PathLike) -> Tuple[IO[bytes], str]:
    """Opens a regular file for reading; anything else is a FileIOError naming it."""
    name = os.fsdecode(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileIOError(f"{name}: no such image file") from None
    except OSError as e:
        raise FileIOError(f"{name}: cannot read image file: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileIOError(f"{name}: is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or a device would block or never end; neither is opened.
        raise FileIOError(f"{name}: not a regular file (a FIFO, device or socket), "
                          "not an image file")
    try:
        return open(path, "rb"), name
    except OSError as e:
        raise FileIOError(f"{name}: cannot read image file: {e.strerror or e}") from None


# ------------------------------------------------------------------------------------------
# PPM and PGM
# ------------------------------------------------------------------------------------------

_SPACE = b" \t\n\r\x0b\x0c"


def _decode_netpbm(f: IO[bytes], name: str, max_pixels: int) -> Tuple[np.ndarray, ImageInfo]:
    """Binary PPM (P6) and PGM (P5): header ``P6 <width> <height> <maxval>`` with ``#``
    comments, one whitespace byte, then 8-bit (maxval < 256) or 16-bit big-endian samples;
    maxval other than 255 is rescaled to 0..255 with rounding, as the Swift package does."""
    data = f.read(1 << 16)
    is_ppm = data[1:2] == b"6"
    kind = "PPM" if is_ppm else "PGM"
    pos = 2

    def field(what: str) -> int:
        nonlocal pos
        while pos < len(data):  # whitespace and comments
            if data[pos] in _SPACE:
                pos += 1
            elif data[pos] == 0x23:  # '#'
                while pos < len(data) and data[pos] not in (0x0A, 0x0D):
                    pos += 1
            else:
                break
        value, digits = 0, 0
        while pos < len(data) and 0x30 <= data[pos] <= 0x39:
            value = value * 10 + data[pos] - 0x30
            digits += 1
            pos += 1
            if value > 1 << 24:
                raise BadImageError(f"{name}: {kind} {what} is too large")
        if digits == 0:
            if pos >= len(data):
                raise BadImageError(f"{name}: truncated {kind} header (no {what})")
            raise BadImageError(f"{name}: malformed {kind} header (bad {what})")
        return value

    width, height, maxval = field("width"), field("height"), field("maximum value")
    if width < 1 or height < 1 or maxval < 1 or maxval > 65535:
        raise BadImageError(f"{name}: {kind} header has an invalid size or maximum value")
    _too_large(name, kind, width, height, max_pixels)
    if pos >= len(data) or data[pos] not in _SPACE:
        raise BadImageError(f"{name}: truncated {kind} header")
    pos += 1
    channels = 3 if is_ppm else 1
    bytes_per_sample = 2 if maxval > 255 else 1
    samples = width * height * channels
    need = pos + samples * bytes_per_sample
    if need > len(data):
        data += f.read(need - len(data))
    if len(data) < need:
        raise BadImageError(f"{name}: truncated {kind} image: {samples * bytes_per_sample} bytes "
                            f"of pixels expected, {len(data) - pos} present")
    raw = np.frombuffer(data, dtype=np.uint8 if bytes_per_sample == 1 else ">u2",
                        count=samples, offset=pos)
    if maxval == 255:
        pixels = raw.astype(np.uint8, copy=True)
    else:
        v = np.minimum(raw.astype(np.int64), maxval)
        pixels = ((v * 255 + maxval // 2) // maxval).astype(np.uint8)
    pixels = pixels.reshape(height, width, channels) if is_ppm else pixels.reshape(height, width)
    return pixels, ImageInfo(width, height, "ppm" if is_ppm else "pgm", channels)


# ------------------------------------------------------------------------------------------
# PNG and JPEG, through Pillow
# ------------------------------------------------------------------------------------------

def _pil() -> Any:
    try:
        import PIL.Image
    except ImportError:  # pragma: no cover - Pillow is a dependency of the package
        raise UnsupportedImageFormatError(
            "decoding PNG and JPEG files needs Pillow (pip install Pillow); PPM and PGM "
            "files and pixel arrays work without it") from None
    return PIL.Image


def _scale_16(v: np.ndarray) -> np.ndarray:
    """16-bit samples to 8 bits, rounded as libpng's png_set_scale_16 does (the Swift
    package's PNG decoder)."""
    v = v.astype(np.int64)
    hi, lo = v >> 8, v & 0xFF
    return (hi + (((lo - hi + 128) * 65535) >> 24)).astype(np.uint8)


def _channels_of(mode: str, info: Any) -> int:
    """Channels of the source, as the Swift package counts them (a palette with
    transparency counts as RGBA)."""
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        return 1
    if mode in ("LA", "La"):
        return 2
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in info):
        return 4
    return 3


def _from_pil(im: Any) -> np.ndarray:
    """8-bit pixels of a PIL image: [H, W] gray, [H, W, 3] RGB or [H, W, 4] RGBA."""
    mode = im.mode
    if mode in ("L", "RGB", "RGBA"):
        a = np.asarray(im)
    elif mode.startswith("I;16") or mode == "I":
        a = _scale_16(np.clip(np.asarray(im), 0, 65535))
    elif mode in ("LA", "La"):
        a = np.asarray(im.convert("L"))
    else:  # palette (transparency dropped), 1-bit, CMYK, YCbCr, ...
        a = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(a, dtype=np.uint8)


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _claimed_size(f: IO[bytes], fmt: str) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG's IHDR or a JPEG's frame header, read without decoding,
    or None when the header is not where it should be (the decoder then says what is
    wrong). The file position is left at the start."""
    try:
        if fmt == "png":
            f.seek(8)
            head = f.read(24)
            if len(head) == 24 and head[4:8] == b"IHDR":
                return int.from_bytes(head[8:12], "big"), int.from_bytes(head[12:16], "big")
            return None
        f.seek(2)
        for _ in range(4096):  # markers before the frame header (APPn, DQT, DHT, ...)
            b = f.read(1)
            while b == b"\xff":
                b = f.read(1)
            if not b:
                return None
            marker = b[0]
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:
                continue  # no length
            length_bytes = f.read(2)
            if len(length_bytes) < 2:
                return None
            length = int.from_bytes(length_bytes, "big")
            if marker in _JPEG_SOF:
                sof = f.read(5)
                if len(sof) < 5:
                    return None
                return int.from_bytes(sof[3:5], "big"), int.from_bytes(sof[1:3], "big")
            if length < 2 or marker == 0xDA:  # start of scan before any frame header
                return None
            f.seek(length - 2, io.SEEK_CUR)
        return None
    finally:
        f.seek(0)


def _decode_pil(f: IO[bytes], name: str, fmt: str, max_pixels: int) -> Tuple[np.ndarray, ImageInfo]:
    kind = fmt.upper()
    claimed = _claimed_size(f, fmt)
    if claimed is not None:  # before Pillow's own (larger) decompression-bomb limit
        _too_large(name, kind, claimed[0], claimed[1], max_pixels)
    Image = _pil()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(f, formats=[kind])
            width, height = im.size
            _too_large(name, kind, width, height, max_pixels)
            if kind == "JPEG" and im.mode == "CMYK":
                raise UnsupportedImageFormatError(
                    f"{name}: unsupported JPEG image: CMYK JPEG images are not supported")
            im.load()
            pixels = _from_pil(im)
            channels = _channels_of(im.mode, im.info)
    except (ImageTooLargeError, UnsupportedImageFormatError):
        raise
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"{name}: {kind} image is too large: {e}") from None
    except MemoryError:
        raise OutOfMemoryError(f"{name}: out of memory decoding the {kind} image") from None
    except Exception as e:  # whatever a damaged file makes the decoder raise
        raise BadImageError(f"{name}: corrupt or truncated {kind} image: {e}") from e
    if pixels.shape[:2] != (height, width):
        raise BadImageError(f"{name}: the {kind} decoder returned {pixels.shape[1]}x"
                            f"{pixels.shape[0]} pixels for a {width}x{height} image")
    return pixels, ImageInfo(width, height, fmt, channels)


def _decode_stream(f: IO[bytes], name: str, max_pixels: int) -> Tuple[np.ndarray, ImageInfo]:
    head = f.read(16)
    fmt = _sniff(head)
    if not fmt:
        if not head:
            raise BadImageError(f"{name}: the file is empty")
        raise UnsupportedImageFormatError(
            f"{name}: not a PNG, JPEG, binary PPM (P6) or binary PGM (P5) image")
    f.seek(0)
    if fmt in ("ppm", "pgm"):
        try:
            return _decode_netpbm(f, name, max_pixels)
        except MemoryError:
            raise OutOfMemoryError(f"{name}: out of memory decoding the image") from None
    return _decode_pil(f, name, fmt, max_pixels)


# ------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------

def _is_pil_image(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("PIL.") and hasattr(obj, "mode") and hasattr(obj, "size")


def load_pixels(image: ImageLike, max_pixels: int = DEFAULT_MAX_PIXELS
                ) -> Tuple[np.ndarray, ImageInfo]:
    """The 8-bit pixels of ``image`` as a C-contiguous array ``[H, W]`` (gray),
    ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA; the alpha channel is ignored later), with
    its :class:`ImageInfo`.

    ``image`` is a file path (``str`` or path-like), the bytes of an image file, a PIL
    image, or a uint8 array ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]``.
    ``max_pixels`` bounds what a file may claim; arrays and PIL images are already decoded.
    """
    _check_limit(max_pixels)
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, (str, os.PathLike)):
        f, name = _open_file(image)
        with f:
            return _decode_stream(f, name, max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode_stream(io.BytesIO(bytes(image)), "image data", max_pixels)
    if _is_pil_image(image):
        try:
            pixels = _from_pil(image)
        except MemoryError:
            raise OutOfMemoryError("out of memory converting the PIL image") from None
        except Exception as e:
            raise BadImageError(f"the PIL image could not be read: {e}") from e
        fmt = (getattr(image, "format", None) or "raw").lower()
        return pixels, ImageInfo(int(image.size[0]), int(image.size[1]), fmt,
                                 _channels_of(image.mode, getattr(image, "info", {})))
    raise TypeError(f"an image is a path, the bytes of an image file, a PIL image or a uint8 "
                    f"array, not {type(image).__name__}")


def _from_array(a: np.ndarray) -> Tuple[np.ndarray, ImageInfo]:
    if a.dtype != np.uint8:
        raise InvalidArgumentError(f"an image array must hold uint8 pixels, not {a.dtype} "
                                   "(scale and convert it first, or give the network input "
                                   "to Session.run)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ShapeError(f"an image array is [H, W], [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] "
                         f"(RGBA), got shape {list(a.shape)}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ShapeError(f"an image must be at least 1x1 pixels, got shape {list(a.shape)}")
    channels = 1 if a.ndim == 2 else a.shape[2]
    return (np.ascontiguousarray(a),
            ImageInfo(int(a.shape[1]), int(a.shape[0]), "raw", channels))


def read_image(image: ImageLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes an image to 8-bit RGB, ``[H, W, 3]`` uint8: gray replicated, alpha dropped,
    16-bit samples reduced, palettes expanded (the Swift package's ``Image``).

    ``image`` is anything :meth:`mnv3.Session.classify` takes: a file path (PNG, JPEG,
    binary PPM or PGM, told apart by content), the bytes of such a file, a PIL image or a
    uint8 array. A file claiming more than ``max_pixels`` pixels is refused with
    :class:`~mnv3.ImageTooLargeError` before it is decoded.
    """
    pixels, _ = load_pixels(image, max_pixels)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels[:, :, :3])
    return pixels


def image_info(image: ImageLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Size, format and source channels of an image (decoding it)."""
    return load_pixels(image, max_pixels)[1]
