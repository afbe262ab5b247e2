"""The exceptions of the package: :class:`Error` and one subclass per status.

Every failure of the C library becomes the subclass of its ``mnv3_status``, with the
library's message (which names the argument, field or file). Image decoding adds four
statuses of its own, with the Swift package's numbers (:class:`BadImageError`,
:class:`UnsupportedImageFormatError`, :class:`BadArrayError`,
:class:`ImageTooLargeError`), and sessions one (:class:`SessionInUseError`). Subclasses also derive from the matching built-in exception
where there is one (``ValueError``, ``OSError``, ``MemoryError``), so that generic handlers
catch them too.
"""
from __future__ import annotations

import enum
from typing import Dict, Optional, Tuple, Type


class Status(enum.IntEnum):
    """The status codes: the values below 1000 are those of ``mnv3_status`` in mnv3.h."""

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    SHAPE = 3
    ARENA_TOO_SMALL = 4
    ARENA_MISALIGNED = 5
    OUT_OF_MEMORY = 6
    IO = 7
    UNSUPPORTED = 8
    FILE_TRUNCATED = 20
    BAD_MAGIC = 21
    BAD_VERSION = 22
    BAD_ENDIANNESS = 23
    CHECKSUM = 24
    SIZE_OVERFLOW = 25
    BAD_OFFSET = 26
    BAD_ENUM = 27
    SHAPE_CHAIN = 28
    BAD_LAYER = 29
    BAD_TENSOR = 30
    BAD_METADATA = 31
    MISALIGNED_DATA = 32
    BAD_SCALE = 33
    BAD_ZERO_POINT = 34
    BAD_MULTIPLIER = 35
    BAD_BIAS_SCALE = 36
    BAD_QUANT_RANGE = 37
    # Python-side statuses, the same numbers as the Swift package's.
    BAD_IMAGE = 1000
    UNSUPPORTED_IMAGE_FORMAT = 1001
    BAD_ARRAY = 1002
    IMAGE_TOO_LARGE = 1003
    # Python only: a session called from a second thread while it runs.
    SESSION_IN_USE = 1004


class Error(Exception):
    """An mnv3 failure: :attr:`status` says what kind, :attr:`message` what and why.

    ``str(error)`` is the message. Catch this class for every error of the package, or a
    subclass for one status.
    """

    #: The status of this class (every subclass has its own).
    status: Status = Status.OK

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = Status(status) if status in _VALUES else status  # type: ignore

    @property
    def code(self) -> str:
        """The status as a lower-case name, for example ``"bad_magic"``."""
        return self.status.name.lower() if isinstance(self.status, Status) else str(self.status)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Tuple[Type["Error"], Tuple[str]]:  # picklable across processes
        return (type(self), (self.message,))


class NullArgumentError(Error, ValueError):
    """A required argument was missing."""
    status = Status.NULL_ARGUMENT


class InvalidArgumentError(Error, ValueError):
    """A value is out of its documented range, or of the wrong type of element."""
    status = Status.INVALID_ARGUMENT


class ShapeError(Error, ValueError):
    """An array's shape or length does not match the session's configuration."""
    status = Status.SHAPE


class ArenaTooSmallError(Error):
    """The arena is smaller than the configuration needs."""
    status = Status.ARENA_TOO_SMALL


class ArenaMisalignedError(Error):
    """The arena is not aligned as the library needs."""
    status = Status.ARENA_MISALIGNED


class OutOfMemoryError(Error, MemoryError):
    """An allocation failed."""
    status = Status.OUT_OF_MEMORY


class FileIOError(Error, OSError):
    """A file could not be opened or read: missing, unreadable, a directory, a FIFO or
    another file that is not a regular file."""
    status = Status.IO


class UnsupportedError(Error):
    """A valid request that this build, this CPU or this model cannot honour."""
    status = Status.UNSUPPORTED


class ModelFileError(Error, ValueError):
    """Base of the errors of a malformed model file (docs/FORMAT.md)."""


class FileTruncatedError(ModelFileError):
    """The data ends before a structure it announces."""
    status = Status.FILE_TRUNCATED


class BadMagicError(ModelFileError):
    """Not an .mnv3 file."""
    status = Status.BAD_MAGIC


class BadVersionError(ModelFileError):
    """A format version this library does not read."""
    status = Status.BAD_VERSION


class BadEndiannessError(ModelFileError):
    """The byte-order marker is not the little-endian one."""
    status = Status.BAD_ENDIANNESS


class ChecksumError(ModelFileError):
    """The payload's CRC-32 does not match the header."""
    status = Status.CHECKSUM


class SizeOverflowError(ModelFileError):
    """A size or count overflows or is absurd."""
    status = Status.SIZE_OVERFLOW


class BadOffsetError(ModelFileError):
    """An offset points outside the file or is misaligned."""
    status = Status.BAD_OFFSET


class BadEnumError(ModelFileError):
    """An enumerated field holds an unknown value."""
    status = Status.BAD_ENUM


class ShapeChainError(ModelFileError):
    """Layer shapes do not connect."""
    status = Status.SHAPE_CHAIN


class BadLayerError(ModelFileError):
    """A layer field is out of range (kernel, stride, ...)."""
    status = Status.BAD_LAYER


class BadTensorError(ModelFileError):
    """A tensor reference is wrong (index, size, type), or a weight does not fit float16."""
    status = Status.BAD_TENSOR


class BadMetadataError(ModelFileError):
    """The preprocessing or label section is malformed."""
    status = Status.BAD_METADATA


class MisalignedDataError(ModelFileError):
    """Bytes to be used in place are not 64-byte aligned."""
    status = Status.MISALIGNED_DATA


class BadScaleError(ModelFileError):
    """A quantization scale is not finite and positive."""
    status = Status.BAD_SCALE


class BadZeroPointError(ModelFileError):
    """A quantization zero point is outside [-128, 127]."""
    status = Status.BAD_ZERO_POINT


class BadMultiplierError(ModelFileError):
    """A real multiplier of a quantized op has no fixed-point form."""
    status = Status.BAD_MULTIPLIER


class BadBiasScaleError(ModelFileError):
    """A bias scale is not the input scale times the weight scale."""
    status = Status.BAD_BIAS_SCALE


class BadQuantRangeError(ModelFileError):
    """A quantized activation range or lookup table is inconsistent."""
    status = Status.BAD_QUANT_RANGE


class BadImageError(Error, ValueError):
    """An image exists but could not be decoded: empty, truncated, corrupt or malformed."""
    status = Status.BAD_IMAGE


class UnsupportedImageFormatError(Error, ValueError):
    """Data in none of the formats the package reads (PNG, JPEG, PPM P6, PGM P5)."""
    status = Status.UNSUPPORTED_IMAGE_FORMAT


class BadArrayError(Error, ValueError):
    """An array file (.npy) is malformed or of a type the operation does not accept."""
    status = Status.BAD_ARRAY


class ImageTooLargeError(Error, ValueError):
    """An image claims more pixels than the limit, or a side longer than 65535 pixels."""
    status = Status.IMAGE_TOO_LARGE


class SessionInUseError(Error, RuntimeError):
    """A session was called from a thread while it was running in another: a session is
    single-user (create one per thread)."""
    status = Status.SESSION_IN_USE


_VALUES = {int(s) for s in Status}
_BY_STATUS: Dict[int, Type[Error]] = {}
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, Error) and _cls.status != Status.OK:
        _BY_STATUS[int(_cls.status)] = _cls


def error_class(status: int) -> Type[Error]:
    """The exception class of a status (:class:`Error` for an unknown one)."""
    return _BY_STATUS.get(int(status), Error)


def make_error(status: int, message: str) -> Error:
    """An instance of the class of ``status`` carrying ``message``."""
    cls = error_class(status)
    return cls(message) if cls is not Error else Error(message, status)
