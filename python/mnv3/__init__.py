"""mnv3: MobileNetV3 inference on ARM and x86 boards, from Python.

The C library (NEON, AVX2 and AVX-512 kernels chosen at run time) runs the network; this
package mirrors the Swift package's API over it::

    import mnv3

    model = mnv3.Model("small.mnv3")                 # or mnv3.Model.builtin(arch="small")
    session = mnv3.Session(model, threads=2)
    for index, label, probability in session.classify("cat.png", top=5):
        print(index, label, probability)
    logits = session.run(x)                          # float32 [N, 3, H, W] -> [N, classes]

- :class:`Model`: a loaded ``.mnv3`` network (or a built-in one), immutable and shareable
  between threads; :meth:`Model.converted` stores its weights as float16.
- :class:`Session`: one configuration and its arena; :meth:`Session.run`,
  :meth:`Session.classify`, :meth:`Session.preprocess`. One per thread; the GIL is released
  while the network runs.
- :class:`Error` and a subclass per status (:class:`FileIOError`, :class:`ShapeError`,
  :class:`BadMagicError`, ...), carrying the library's message.
- :mod:`mnv3.convert`: the converters (PyTorch, TFLite, quantization, goldens).
- ``python -m mnv3``: ``info``, ``classify``, ``run``, ``validate`` and ``bench``.

The C library is loaded on first use (``libmnv3.so`` built by ``pip install .``, or the
file the environment variable ``MNV3_LIB`` names).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (ArenaMisalignedError, ArenaTooSmallError, BadArrayError,
                     BadBiasScaleError, BadEndiannessError, BadEnumError, BadImageError,
                     BadLayerError, BadMagicError, BadMetadataError, BadMultiplierError,
                     BadOffsetError, BadQuantRangeError, BadScaleError, BadTensorError,
                     BadVersionError, BadZeroPointError, ChecksumError, Error,
                     FileIOError, FileTruncatedError, ImageTooLargeError,
                     InvalidArgumentError, MisalignedDataError, ModelFileError,
                     NullArgumentError, OutOfMemoryError, SessionInUseError, ShapeChainError,
                     ShapeError, SizeOverflowError, Status, UnsupportedError,
                     UnsupportedImageFormatError)
from .image import DEFAULT_MAX_PIXELS, ImageInfo, image_info, read_image
from .model import (ArenaPlan, ImageSize, LayerInfo, Model, Preprocessing, Quantization)
from .session import (Classification, QuantizedPrediction, Session, available_isas,
                      best_isa)

__version__ = "0.1.0"  # the package's and the C library's version (include/mnv3.h)

__all__ = [
    "Model", "Session", "Classification", "QuantizedPrediction", "ImageSize",
    "Preprocessing", "Quantization", "LayerInfo", "ArenaPlan", "ImageInfo",
    "read_image", "image_info", "DEFAULT_MAX_PIXELS", "available_isas", "best_isa",
    "isa_available", "library_version", "library_path", "Status", "Error",
    "NullArgumentError", "InvalidArgumentError", "ShapeError", "ArenaTooSmallError",
    "ArenaMisalignedError", "OutOfMemoryError", "FileIOError", "UnsupportedError",
    "ModelFileError", "FileTruncatedError", "BadMagicError", "BadVersionError",
    "BadEndiannessError", "ChecksumError", "SizeOverflowError", "BadOffsetError",
    "BadEnumError", "ShapeChainError", "BadLayerError", "BadTensorError", "BadMetadataError",
    "MisalignedDataError", "BadScaleError", "BadZeroPointError", "BadMultiplierError",
    "BadBiasScaleError", "BadQuantRangeError", "BadImageError", "UnsupportedImageFormatError",
    "BadArrayError", "ImageTooLargeError", "SessionInUseError",
]


def library_version() -> str:
    """The version of the C library actually loaded."""
    from . import _native
    return _native.text(_native.lib().mnv3_version_string())


def library_path() -> str:
    """The file the C library was loaded from."""
    from . import _native
    return _native.library_path()


def isa_available(isa: str) -> bool:
    """Whether this build has the kernel set ``isa`` (``"scalar"``, ``"avx2"``,
    ``"avx512"``, ``"neon"``; ``"auto"`` always) and the running CPU supports it."""
    from . import _native
    from ._util import choice
    name, value = choice(isa, "kernel set", _native.ISA)
    return name == "auto" or bool(_native.lib().mnv3_isa_available(value))


if TYPE_CHECKING:  # pragma: no cover
    from . import convert as convert


def __getattr__(name: str) -> Any:
    if name == "convert":  # mnv3.convert without an explicit import
        import importlib
        return importlib.import_module(".convert", __name__)
    raise AttributeError(f"module 'mnv3' has no attribute {name!r}")
