"""Models: a loaded network, its weights, preprocessing metadata and labels."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _native
from ._util import check, choice, input_size, integer
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from .image import ImageLike
    from .session import Classification

#: What :class:`Model` loads: a path to a ``.mnv3`` file, or the bytes of one.
ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

#: ``Model.builtin(precision=...)`` and ``Model.precision``: a model's arithmetic.
PRECISION_ALIASES = {"float32": "fp32", "float": "fp32", "f32": "fp32", "i8": "int8",
                     "q8": "int8"}
#: ``Model.converted(weights=...)`` and ``Model.weight_type``.
WEIGHT_ALIASES = {"fp32": "float32", "f32": "float32", "fp16": "float16", "f16": "float16",
                  "half": "float16"}


class ImageSize(NamedTuple):
    """An input size in pixels: ``(height, width)``."""

    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.height}x{self.width}"


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the network input: ``input = (pixel * scale - mean[c]) /
    std[c]``, channels in :attr:`channel_order`."""

    #: The input size the model was trained at.
    size: ImageSize
    #: ``"rgb"`` or ``"bgr"``.
    channel_order: str
    #: The layout the original framework used: ``"nchw"`` or ``"nhwc"``.
    layout: str
    scale: float
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]


@dataclass(frozen=True)
class Quantization:
    """How the real values of a quantized tensor map to its 8-bit values:
    ``real = scale * (q - zero_point)``."""

    #: ``"int8"`` or ``"uint8"``: the element type of the tensor's bytes.
    type: str
    #: Real value of one step; finite and positive.
    scale: float
    #: The value that stands for 0.0, in the range of :attr:`type`.
    zero_point: int

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the tensor's bytes."""
        return np.dtype(np.uint8 if self.type == "uint8" else np.int8)

    def quantize(self, x: ArrayLike) -> np.ndarray:
        """The nearest quantized values, as TensorFlow Lite's QUANTIZE computes them (``x /
        scale`` in float32, rounded half away from zero, plus the zero point), clamped to
        the type's range; NaN becomes the lowest value. A session quantizes float input to a
        quantized model the same way."""
        info = np.iinfo(self.dtype)
        r = (np.asarray(x, dtype=np.float32) / np.float32(self.scale)).astype(np.float64)
        r = np.clip(np.where(np.isnan(r), -np.inf, r), -1e9, 1e9)
        q = self.zero_point + np.copysign(np.floor(np.abs(r) + 0.5), r)  # exact in float64
        out: np.ndarray = np.clip(q, info.min, info.max).astype(self.dtype)
        return out

    def dequantize(self, q: ArrayLike) -> np.ndarray:
        """The real values of quantized values, as float32."""
        return (np.float64(self.scale) *
                (np.asarray(q, dtype=np.int64) - self.zero_point)).astype(np.float32)

    def __str__(self) -> str:
        return f"{self.type}, scale {self.scale:g}, zero point {self.zero_point}"


@dataclass(frozen=True)
class LayerInfo:
    """One executed step of the network at a given input size."""

    index: int
    #: ``"conv"``, ``"pointwise"``, ``"depthwise"``, ``"squeeze_excite"``, ``"global_pool"``
    #: or ``"fully_connected"``.
    kind: str
    #: Inverted-residual block index, or None outside blocks.
    block: Optional[int]
    #: For example ``"stem"``, ``"block3.expand"``, ``"head.fc1"``.
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    input_size: ImageSize
    output_size: ImageSize
    #: ``"none"``, ``"relu"``, ``"relu6"``, ``"hard_swish"`` or ``"hard_sigmoid"``.
    activation: str
    #: Whether the step adds the block input.
    residual: bool
    #: Multiply-accumulates of one image.
    macs: int


@dataclass(frozen=True)
class ArenaPlan:
    """Memory of one :class:`~mnv3.Session`, broken down by where each byte lives. The
    session's arena holds :attr:`total` bytes (activations, scratch and the context);
    weights belong to the model and are shared by all of its sessions."""

    #: Bytes of the session's arena: what ``mnv3_arena_size`` reports.
    total: int
    #: Lifetime-planned activation buffers (in the arena).
    activations: int
    #: Largest input + output (+ residual) live at one layer.
    activation_lower_bound: int
    #: Held by the model: weights re-laid out for the selected kernels.
    packed_weights: int
    #: Held by the model: its copy of the weights.
    model_weights: int
    #: Per-thread scratch and small vectors (in the arena).
    scratch: int
    #: The context structure and step table (in the arena).
    context: int
    #: The kernel set the plan was made for.
    isa: str

    @classmethod
    def _from_c(cls, p: _native.ArenaPlan) -> "ArenaPlan":
        return cls(total=p.total, activations=p.activations,
                   activation_lower_bound=p.activation_lower_bound,
                   packed_weights=p.packed_weights, model_weights=p.model_weights,
                   scratch=p.scratch, context=p.context, isa=isa_name(p.isa))


def isa_name(value: int) -> str:
    return _native.text(_native.lib().mnv3_isa_name(value)) or "auto"


class Model:
    """A loaded MobileNetV3 network: layers, weights, preprocessing metadata and labels.

    ``Model(path_or_bytes)`` loads a ``.mnv3`` file (docs/FORMAT.md) from a path, or parses
    the bytes of one (they are copied). :meth:`builtin` makes a built-in architecture with
    deterministic weights instead.

    A model is immutable: share one between any number of threads, each running
    inferences through its own :class:`~mnv3.Session`. The C model is freed when the last
    reference to it (including every session's) goes away.

    Raises :class:`~mnv3.FileIOError` for a missing or unreadable file, a directory or a
    FIFO (not read), and a :class:`~mnv3.ModelFileError` subclass for a malformed file
    (:class:`~mnv3.BadMagicError`, :class:`~mnv3.ChecksumError`, ...).
    """

    _handle: Optional[int]

    def __init__(self, source: ModelSource) -> None:
        lib = _native.lib()
        handle, err = ctypes.c_void_p(), _native.Error()
        if isinstance(source, (str, os.PathLike)):
            path = os.fsencode(source)
            name = os.fsdecode(source)
            if b"\0" in path:
                raise InvalidArgumentError(f"{name!r}: a path cannot contain a NUL character")
            status = lib.mnv3_model_load_file(path, 0, ctypes.byref(handle), ctypes.byref(err))
            check(status, err, name)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = np.frombuffer(source, dtype=np.uint8) if len(source) else np.zeros(0, np.uint8)
            status = lib.mnv3_model_load_memory(data.ctypes.data, data.nbytes, 0,
                                                ctypes.byref(handle), ctypes.byref(err))
            check(status, err, "model bytes")
        else:
            raise TypeError(f"a model is loaded from a path or the bytes of a .mnv3 file, not "
                            f"{type(source).__name__}")
        self._adopt(handle.value)

    @classmethod
    def _from_handle(cls, handle: Optional[int]) -> "Model":
        model = cls.__new__(cls)
        model._adopt(handle)
        return model

    def _adopt(self, handle: Optional[int]) -> None:
        self._handle = None
        if not handle:
            raise InvalidArgumentError("the library returned no model")
        lib = _native.lib()
        info = _native.ModelInfo()
        status = lib.mnv3_model_get_info(handle, ctypes.byref(info))
        if status != _native.OK:
            lib.mnv3_model_free(handle)
            check(status, None, "reading model information")
        self._handle = handle
        self._lib = lib
        self._info = info
        labels: List[str] = []
        if info.has_labels:
            for i in range(info.num_classes):
                labels.append(_native.text(lib.mnv3_model_label(handle, i)))
        self._labels = labels
        qin, qout = _native.Quantization(), _native.Quantization()
        self._input_q: Optional[Quantization] = None
        self._logits_q: Optional[Quantization] = None
        if info.precision != 0 and lib.mnv3_model_quantization(
                handle, ctypes.byref(qin), ctypes.byref(qout)) == _native.OK:
            self._input_q = Quantization(_native.QTYPE.get(qin.type, "int8"), float(qin.scale),
                                         int(qin.zero_point))
            self._logits_q = Quantization(_native.QTYPE.get(qout.type, "int8"),
                                          float(qout.scale), int(qout.zero_point))
        p = info.preprocess
        self._preprocess = Preprocessing(
            size=ImageSize(int(p.height), int(p.width)),
            channel_order=_native.CHANNEL_ORDER.get(p.channel_order, "rgb"),
            layout="nhwc" if p.layout == 1 else "nchw", scale=float(p.scale),
            mean=tuple(float(v) for v in p.mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in p.std))  # type: ignore[arg-type]

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            try:
                self._lib.mnv3_model_free(handle)
            except Exception:  # interpreter shutdown
                pass

    @property
    def handle(self) -> int:
        """The C ``mnv3_model *`` as an integer address: valid while this object lives;
        never free it."""
        assert self._handle is not None
        return self._handle

    # -- construction ------------------------------------------------------------------

    @classmethod
    def builtin(cls, arch: str = "large", width: float = 1.0, classes: int = 1000,
                seed: int = 0, precision: str = "fp32",
                flavor: str = "torchvision") -> "Model":
        """A built-in architecture with deterministic pseudo-random weights derived from
        ``seed``, for benchmarks and tests (the logits are meaningless).

        Args:
            arch: ``"large"`` or ``"small"``.
            width: channel multiplier in (0, 4].
            classes: number of output classes, 1 to 100000.
            seed: weight seed, 0 to 2**64 - 1.
            precision: ``"fp32"`` (or ``"float32"``), or ``"int8"``: the float network of
                the same seed quantized to int8 (per-channel weights, activation scales
                from a float pass over a fixed synthetic image; deterministic).
            flavor: ``"torchvision"``, ``"walkthrough"`` (the paper's tables) or
                ``"tflite"`` (SAME padding).
        """
        arch_name, arch_c = choice(arch, "architecture", {"large": 1, "small": 2})
        _, flavor_c = choice(flavor, "flavor", {k: v for k, v in _native.FLAVOR.items()
                                                if k != "custom"})
        prec, _ = choice(precision, "precision", {"fp32": 0, "int8": 1}, PRECISION_ALIASES)
        if isinstance(width, bool) or not isinstance(width, (int, float, np.floating,
                                                             np.integer)):
            raise InvalidArgumentError(f"width must be a number in (0, 4] (got {width!r})")
        classes = integer(classes, "classes", 1, 100000)
        seed = integer(seed, "seed", 0, 2**64 - 1)
        lib = _native.lib()
        create = (lib.mnv3_model_create_builtin_int8 if prec == "int8"
                  else lib.mnv3_model_create_builtin)
        handle, err = ctypes.c_void_p(), _native.Error()
        status = create(arch_c, flavor_c, float(width), classes, seed, ctypes.byref(handle),
                        ctypes.byref(err))
        check(status, err, f"built-in {arch_name} {prec} model")
        return cls._from_handle(handle.value)

    def converted(self, weights: str = "float16") -> "Model":
        """The same network with its weights stored as ``weights``: ``"float16"`` halves
        the model (rounded to nearest even; a weight beyond float16's range is refused
        with :class:`~mnv3.BadTensorError`), ``"float32"`` widens float16 weights exactly.
        ``"fp16"`` and ``"fp32"`` are accepted too. A quantized model raises
        :class:`~mnv3.UnsupportedError`."""
        name, value = choice(weights, "weight type", {"float32": 0, "float16": 1},
                             WEIGHT_ALIASES)
        handle, err = ctypes.c_void_p(), _native.Error()
        status = self._lib.mnv3_model_convert_weights(self.handle, value, ctypes.byref(handle),
                                                      ctypes.byref(err))
        check(status, err, f"converting the weights to {name}")
        return Model._from_handle(handle.value)

    # -- description ---------------------------------------------------------------------

    @property
    def arch(self) -> str:
        """``"large"``, ``"small"`` or ``"custom"``."""
        return {1: "large", 2: "small"}.get(self._info.arch, "custom")

    @property
    def flavor(self) -> str:
        """``"torchvision"``, ``"walkthrough"``, ``"tflite"`` or ``"custom"``."""
        return {v: k for k, v in _native.FLAVOR.items()}.get(self._info.flavor, "custom")

    @property
    def precision(self) -> str:
        """The arithmetic of the network: ``"fp32"`` or ``"int8"``."""
        return _native.PRECISION.get(self._info.precision, "fp32")

    @property
    def quantized(self) -> bool:
        """Whether the network is quantized (int8 weights and activations)."""
        return bool(self._info.precision != 0)

    @property
    def weight_type(self) -> str:
        """How the weights are stored: ``"float32"``, ``"float16"`` or ``"int8"``."""
        value = self._lib.mnv3_model_weight_type(self.handle)
        return {v: k for k, v in _native.WEIGHTS.items()}.get(value, "float32")

    @property
    def input_size(self) -> ImageSize:
        """The input size the model was trained at, ``(height, width)``: a session's
        default."""
        return self._preprocess.size

    @property
    def input_channels(self) -> int:
        """Input channels (3)."""
        return int(self._info.input_channels)

    @property
    def classes(self) -> int:
        """Number of output classes (the length of a row of logits)."""
        return int(self._info.num_classes)

    @property
    def feature_dimension(self) -> int:
        """Length of the pooled feature vector."""
        return int(self._info.feature_dim)

    @property
    def block_count(self) -> int:
        """Inverted-residual blocks."""
        return int(self._info.num_blocks)

    @property
    def layer_count(self) -> int:
        """Steps reported by :meth:`layers`."""
        return int(self._info.num_layers)

    @property
    def parameters(self) -> int:
        """Parameters, counted as the source framework counts them (batch norm = 2 per
        channel)."""
        return int(self._info.parameters)

    @property
    def stored_values(self) -> int:
        """Weight and bias values actually held (folded), whatever their element type."""
        return int(self._info.stored_floats)

    @property
    def stored_bytes(self) -> int:
        """Bytes of those values at their stored types."""
        return int(self._info.stored_bytes)

    @property
    def labels(self) -> List[str]:
        """Class labels (empty when the model has none)."""
        return list(self._labels)

    @property
    def has_labels(self) -> bool:
        """Whether the model holds class labels."""
        return bool(self._info.has_labels)

    @property
    def preprocess(self) -> Preprocessing:
        """Size, channel order, scale, mean, std and framework layout of the input."""
        return self._preprocess

    @property
    def input_quantization(self) -> Optional[Quantization]:
        """A quantized model's input quantization: how a session quantizes float input,
        and what quantized input it takes. None for a float model."""
        return self._input_q

    @property
    def logits_quantization(self) -> Optional[Quantization]:
        """A quantized model's logits quantization (the input of the source model's
        softmax). None for a float model."""
        return self._logits_q

    def label(self, index: int) -> str:
        """The label of class ``index``, or ``"class N"`` when the model has none."""
        if 0 <= index < len(self._labels) and self._labels[index]:
            return self._labels[index]
        return f"class {index}"

    def macs(self, size: Union[None, int, Tuple[int, int]] = None) -> int:
        """Multiply-accumulates of one image at ``size`` (a side or ``(height, width)``;
        default: :attr:`input_size`)."""
        h, w = input_size(size, self.input_size)
        macs = ctypes.c_uint64()
        check(self._lib.mnv3_model_macs(self.handle, h, w, ctypes.byref(macs)), None,
              f"MACs at {h}x{w}")
        return int(macs.value)

    def layers(self, size: Union[None, int, Tuple[int, int]] = None) -> List[LayerInfo]:
        """The executed steps at ``size`` (default: :attr:`input_size`)."""
        h, w = input_size(size, self.input_size)
        out = []
        for i in range(self.layer_count):
            li = _native.LayerInfo()
            check(self._lib.mnv3_model_layer(self.handle, h, w, i, ctypes.byref(li)), None,
                  f"layer {i} at {h}x{w}")
            out.append(LayerInfo(
                index=i, kind=_native.LAYER_KIND.get(li.kind, "conv"),
                block=None if li.block < 0 else int(li.block), name=_native.text(li.name),
                in_channels=int(li.in_channels), out_channels=int(li.out_channels),
                kernel=int(li.kernel), stride=int(li.stride),
                input_size=ImageSize(int(li.in_height), int(li.in_width)),
                output_size=ImageSize(int(li.out_height), int(li.out_width)),
                activation=_native.ACTIVATION.get(li.activation, "none"),
                residual=bool(li.residual), macs=int(li.macs)))
        return out

    def arena_plan(self, threads: int = 1, precision: str = "exact", layout: str = "nchw",
                   batch: int = 1, height: Optional[int] = None, width: Optional[int] = None,
                   isa: str = "auto") -> ArenaPlan:
        """The memory a :class:`~mnv3.Session` with these options needs, broken down,
        before anything is created."""
        from .session import make_config
        config = make_config(self, threads=threads, precision=precision, layout=layout,
                             batch=batch, height=height, width=width, isa=isa)
        plan, err = _native.ArenaPlan(), _native.Error()
        check(self._lib.mnv3_arena_plan_for(self.handle, ctypes.byref(config),
                                            ctypes.byref(plan), ctypes.byref(err)),
              err, "arena plan")
        return ArenaPlan._from_c(plan)

    # -- saving --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The model serialised in the ``.mnv3`` format."""
        size, err = ctypes.c_size_t(), _native.Error()
        check(self._lib.mnv3_model_save_memory(self.handle, None, 0, ctypes.byref(size),
                                               ctypes.byref(err)), err, "serialising model")
        buf = ctypes.create_string_buffer(max(1, size.value))
        written = ctypes.c_size_t()
        check(self._lib.mnv3_model_save_memory(self.handle, buf, size.value,
                                               ctypes.byref(written), ctypes.byref(err)),
              err, "serialising model")
        return buf.raw[:written.value]

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the model to a ``.mnv3`` file."""
        raw = os.fsencode(path)
        if b"\0" in raw:
            raise InvalidArgumentError(f"{os.fsdecode(path)!r}: a path cannot contain a NUL "
                                       "character")
        err = _native.Error()
        check(self._lib.mnv3_model_save_file(self.handle, raw, ctypes.byref(err)), err,
              os.fsdecode(path))

    # -- convenience ---------------------------------------------------------------------

    def classify(self, image: "ImageLike", top: int = 5,
                 threads: int = 1) -> List["Classification"]:
        """Classifies one image with a temporary single-image session (see
        :meth:`mnv3.Session.classify`); create a session to classify many."""
        from .session import Session
        with Session(self, threads=threads) as session:
            return session.classify(image, top=top)

    def __repr__(self) -> str:
        if self._handle is None:
            return "<mnv3.Model (not loaded)>"
        return (f"<mnv3.Model {self.arch} ({self.flavor}), {self.precision}, "
                f"{self.weight_type} weights, {self.classes} classes, "
                f"input {self.input_size}>")
