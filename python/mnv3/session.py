"""Sessions: one inference configuration and the memory arena that runs it."""
from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Iterator, List, NamedTuple, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _native
from ._util import check, choice, integer
from .errors import (InvalidArgumentError, SessionInUseError, ShapeError, UnsupportedError)
from .image import DEFAULT_MAX_PIXELS, ImageInfo, ImageLike, load_pixels
from .model import ArenaPlan, ImageSize, Model, Quantization, isa_name


class Classification(NamedTuple):
    """One class of a classification result: ``(index, label, probability)``."""

    #: The class index in the logits.
    index: int  # type: ignore[assignment]  # the field, as in the Swift API, not tuple.index
    #: The class label (``"class N"`` when the model has no labels).
    label: str
    #: Softmax probability over all classes.
    probability: float


class QuantizedPrediction(NamedTuple):
    """The result of :meth:`Session.predict_quantized`."""

    #: Logits ``[N, classes]``, dequantized (float32).
    logits: np.ndarray
    #: The quantized logits ``[N, classes]`` (int8 or uint8, as :attr:`quantization`):
    #: exactly the source model's quantized logits, the input of its softmax.
    quantized_logits: np.ndarray
    #: The quantization of the logits.
    quantization: Quantization


def make_config(model: Model, threads: int = 1, precision: str = "exact",
                layout: str = "nchw", batch: int = 1, height: Optional[int] = None,
                width: Optional[int] = None, isa: str = "auto",
                profile: bool = False) -> _native.Config:
    """The C configuration of a session, every option checked (InvalidArgumentError)."""
    lib = _native.lib()
    config = _native.Config()
    lib.mnv3_config_init(ctypes.byref(config), model.handle)
    lo, hi = _native.MIN_INPUT_SIZE, _native.MAX_INPUT_SIZE
    config.batch = integer(batch, "batch", 1, _native.MAX_BATCH)
    config.threads = integer(threads, "threads", 1, _native.MAX_THREADS)
    if height is not None:
        config.height = integer(height, "height", lo, hi)
    if width is not None:
        config.width = integer(width, "width", lo, hi)
    config.layout = choice(layout, "layout", _native.LAYOUT)[1]
    config.precision = choice(precision, "precision", _native.PRECISION_MODE)[1]
    isa_key, config.isa = choice(isa, "kernel set", _native.ISA)
    if isa_key != "auto" and not lib.mnv3_isa_available(config.isa):
        have = ", ".join(available_isas())
        raise UnsupportedError(f"kernel set {isa_key!r} is not available on this machine "
                               f"(available: {have})")
    config.profile = 1 if profile else 0
    return config


def available_isas() -> List[str]:
    """The kernel sets this build and CPU can run, fastest last (``"scalar"`` first)."""
    lib = _native.lib()
    return [name for name in ("scalar", "neon", "avx2", "avx512")
            if lib.mnv3_isa_available(_native.ISA[name])]


def best_isa() -> str:
    """What ``isa="auto"`` resolves to on this machine (the environment variable
    ``MNV3_ISA`` overrides the automatic choice)."""
    return isa_name(_native.lib().mnv3_isa_best())


class Session:
    """An inference context: one configuration (batch, input size, layout, threads,
    kernels, precision) and the memory arena that runs it.

    Args:
        model: the :class:`~mnv3.Model` to run; the session keeps it alive.
        threads: worker threads of one inference, 1 to 256. They are started here, once.
        precision: ``"exact"`` (float32 arithmetic) or ``"relaxed"`` (float16 or bf16
            products where the CPU runs them faster; :attr:`arithmetic` says which).
        layout: layout of the input arrays: ``"nchw"`` (``[N, 3, H, W]``) or ``"nhwc"``
            (``[N, H, W, 3]``).
        batch: images per :meth:`run`, 1 to 4096.
        height, width: input size, 32 to 4096 each; None: the model's :attr:`~mnv3.Model.
            input_size`.
        isa: kernel set: ``"auto"`` (the fastest the CPU supports), ``"scalar"``,
            ``"avx2"``, ``"avx512"`` or ``"neon"``.
        profile: record per-layer times (:attr:`layer_times`).

    A session is single-user: run it from one thread at a time (a second thread calling
    it meanwhile gets :class:`~mnv3.SessionInUseError`). Create one session per thread;
    all of them may share one model. The GIL is released while the network runs, so
    sessions in several threads run in parallel. Creating a session allocates its arena;
    :meth:`run` allocates nothing inside the C library (only the returned array).
    """

    def __init__(self, model: Model, threads: int = 1, precision: str = "exact",
                 layout: str = "nchw", batch: int = 1, height: Optional[int] = None,
                 width: Optional[int] = None, isa: str = "auto",
                 profile: bool = False) -> None:
        self._ctx: Optional[int] = None
        if not isinstance(model, Model):
            raise TypeError(f"a session runs an mnv3.Model, not {type(model).__name__}")
        lib = _native.lib()
        config = make_config(model, threads=threads, precision=precision, layout=layout,
                             batch=batch, height=height, width=width, isa=isa, profile=profile)
        plan, err = _native.ArenaPlan(), _native.Error()
        check(lib.mnv3_arena_plan_for(model.handle, ctypes.byref(config), ctypes.byref(plan),
                                      ctypes.byref(err)), err, "planning the session")
        ctx = ctypes.c_void_p()
        check(lib.mnv3_context_create(model.handle, ctypes.byref(config), None, 0,
                                      ctypes.byref(ctx), ctypes.byref(err)),
              err, "creating the session")
        if not ctx.value:
            raise InvalidArgumentError("creating the session: the library returned no context")
        self._ctx = ctx.value
        self._lib = lib
        self._lock = threading.Lock()
        self._model = model
        self._batch = int(config.batch)
        self._size = ImageSize(int(config.height), int(config.width))
        self._layout = "nhwc" if config.layout == 1 else "nchw"
        self._precision = "relaxed" if config.precision == 1 else "exact"
        self._profile = bool(profile)
        self._isa = isa_name(lib.mnv3_context_isa(ctx.value))
        self._threads = int(lib.mnv3_context_threads(ctx.value))
        self._arithmetic = _native.ARITHMETIC.get(lib.mnv3_context_arithmetic(ctx.value), "fp32")
        kernels = lib.mnv3_context_int8_kernels(ctx.value)
        self._int8_kernels = _native.text(kernels) if kernels else None
        self._plan = ArenaPlan._from_c(plan)
        if self._layout == "nchw":
            self._shape: Tuple[int, ...] = (self._batch, 3, self._size.height, self._size.width)
        else:
            self._shape = (self._batch, self._size.height, self._size.width, 3)

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Frees the context and its arena now (waiting for a run in another thread to
        end). The session cannot run afterwards. Also done when it is garbage collected."""
        if self._ctx is None:
            return
        with self._lock:
            ctx, self._ctx = self._ctx, None
            if ctx:
                self._lib.mnv3_context_free(ctx)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ctx, self._ctx = getattr(self, "_ctx", None), None
        if ctx:
            try:
                self._lib.mnv3_context_free(ctx)
            except Exception:  # interpreter shutdown
                pass

    def _acquire(self) -> int:
        """Takes the session for one call (release self._lock afterwards) and returns the
        context; raises if another thread has it or it is closed."""
        if not self._lock.acquire(blocking=False):
            raise SessionInUseError(
                "the session is running in another thread; a session is single-user: "
                "create one session per thread (they can share the model)")
        if self._ctx is None:
            self._lock.release()
            raise InvalidArgumentError("the session is closed")
        return self._ctx

    @contextlib.contextmanager
    def _using(self) -> Iterator[int]:
        ctx = self._acquire()
        try:
            yield ctx
        finally:
            self._lock.release()

    # -- configuration -------------------------------------------------------------------

    @property
    def model(self) -> Model:
        """The model this session runs."""
        return self._model

    @property
    def threads(self) -> int:
        """Worker threads in use."""
        return self._threads

    @property
    def precision(self) -> str:
        """``"exact"`` or ``"relaxed"``, as configured (see :attr:`arithmetic`)."""
        return self._precision

    @property
    def layout(self) -> str:
        """Layout of the input arrays: ``"nchw"`` or ``"nhwc"``."""
        return self._layout

    @property
    def batch(self) -> int:
        """Images per :meth:`run`."""
        return self._batch

    @property
    def input_size(self) -> ImageSize:
        """The input size of this session, ``(height, width)``."""
        return self._size

    @property
    def height(self) -> int:
        return self._size.height

    @property
    def width(self) -> int:
        return self._size.width

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """The shape :meth:`run` takes: ``(N, 3, H, W)`` for ``"nchw"``, ``(N, H, W, 3)``
        for ``"nhwc"``."""
        return self._shape

    @property
    def output_shape(self) -> Tuple[int, int]:
        """The shape of the logits: ``(N, classes)``."""
        return (self._batch, self._model.classes)

    @property
    def isa(self) -> str:
        """The kernel set in use: ``"scalar"``, ``"avx2"``, ``"avx512"`` or ``"neon"``."""
        return self._isa

    @property
    def arithmetic(self) -> str:
        """The arithmetic in use: ``"fp32"`` unless the precision is ``"relaxed"`` and the
        kernel set has faster arithmetic on this CPU (``"fp16"`` on ARMv8.2 with FP16
        arithmetic, ``"bf16"`` with AVX512-BF16)."""
        return self._arithmetic

    @property
    def arena_bytes(self) -> int:
        """Bytes of this session's arena (activations, scratch and the context): what
        ``mnv3_arena_size`` reports. Weights belong to the model (:attr:`arena_plan`)."""
        return self._plan.total

    @property
    def arena_plan(self) -> ArenaPlan:
        """The memory this session uses, broken down."""
        return self._plan

    @property
    def int8_kernels(self) -> Optional[str]:
        """For a quantized model, the int8 kernel variant its kernel set resolved to on this
        CPU (for example ``"avx512vnni"``, ``"avx2"``, ``"scalar"``); None for a float
        model."""
        return self._int8_kernels

    @property
    def layer_times(self) -> np.ndarray:
        """Nanoseconds the last inference spent in each layer (indices as
        :meth:`Model.layers`), uint64; all zero unless the session was created with
        ``profile=True``."""
        with self._using() as ctx:
            return np.array([self._lib.mnv3_context_layer_ns(ctx, i)
                             for i in range(self._model.layer_count)], dtype=np.uint64)

    # -- inference -----------------------------------------------------------------------

    def _input(self, x: ArrayLike) -> np.ndarray:
        """The input as a C-contiguous, aligned array of float32, or of the quantized
        model's input type; checked against the session's shape."""
        if (type(x) is np.ndarray and x.dtype == np.float32 and x.shape == self._shape and
                x.flags.c_contiguous and x.flags.aligned):
            return x  # the common case, read in place
        if not isinstance(x, np.ndarray):
            x = np.asarray(x, dtype=np.float32)
        q = self._model.input_quantization
        dt = x.dtype
        if dt.kind == "f" and dt.itemsize == 4:
            x = np.require(x, np.float32, ["C", "A"])
        elif dt in (np.uint8, np.int8):
            if q is None:
                raise UnsupportedError(f"{dt} input is quantized input, which needs a quantized "
                                       f"model; this one is {self._model.precision} (give "
                                       "float32 input, normalised)")
            if dt != q.dtype:
                raise InvalidArgumentError(f"the model takes {q.type} input, got {dt} values")
            x = np.require(x, dt, ["C", "A"])
        else:
            extra = f" or {q.type} (quantized)" if q is not None else ""
            raise InvalidArgumentError(f"input of dtype {dt}: the session takes float32 "
                                       f"(normalised){extra} input")
        if x.shape != self._shape:
            hint = ""
            other = ((self._batch,) + self._shape[2:] + (3,) if self._layout == "nchw"
                     else (self._batch, 3) + self._shape[1:3])
            if x.shape == other:
                hint = (f" (this is {'nhwc' if self._layout == 'nchw' else 'nchw'} input: "
                        f"create the session with layout="
                        f"{'nhwc' if self._layout == 'nchw' else 'nchw'!r})")
            raise ShapeError(f"input shape {list(x.shape)} does not match the session's "
                             f"{self._layout} input {list(self._shape)}{hint}")
        return x

    def _output(self, out: Optional[np.ndarray]) -> np.ndarray:
        if out is None:
            return np.empty((self._batch, self._model.classes), dtype=np.float32)
        if not isinstance(out, np.ndarray) or out.dtype != np.float32:
            raise InvalidArgumentError("out must be a float32 numpy array")
        if out.shape != self.output_shape:
            raise ShapeError(f"out has shape {list(out.shape)}, the logits are "
                             f"{list(self.output_shape)}")
        if not (out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
            raise InvalidArgumentError("out must be C-contiguous, aligned and writeable")
        return out

    def run(self, x: ArrayLike, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Runs the network and returns the logits, float32 ``[N, classes]``.

        ``x`` has the shape :attr:`input_shape`. float32 input is already normalised (see
        :meth:`preprocess`); a C-contiguous float32 array is read in place, anything else
        is converted first. A quantized model also takes quantized input, bytes of its
        input type (uint8 or int8, :attr:`Model.input_quantization`), read in place; its
        logits are dequantized. ``out``: a float32 array of shape :attr:`output_shape` to
        write the logits into instead of a new one.

        Raises :class:`~mnv3.ShapeError` for a wrong shape, and
        :class:`~mnv3.InvalidArgumentError` (float64, int32, ...) or
        :class:`~mnv3.UnsupportedError` (8-bit input to a float model) for a wrong dtype.
        The GIL is released while the network runs.
        """
        x = self._input(x)
        out = self._output(out)
        ctx = self._acquire()
        try:
            if x.dtype == np.float32:
                status = self._lib.mnv3_run(ctx, x.ctypes.data, x.size, out.ctypes.data,
                                            out.size, None, 0)
            else:
                status = self._lib.mnv3_run_quantized(ctx, x.ctypes.data, x.size, None, 0,
                                                      out.ctypes.data, out.size)
        finally:
            self._lock.release()
        if status:
            check(status, None, "inference")
        return out

    def predict(self, x: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the network on float32 input (as :meth:`run`) and returns the logits
        ``[N, classes]`` and the globally pooled features ``[N, feature_dimension]``,
        both float32."""
        x = self._input(x)
        if x.dtype != np.float32:
            raise InvalidArgumentError("predict takes float32 input; for quantized input use "
                                       "run or predict_quantized")
        logits = np.empty(self.output_shape, dtype=np.float32)
        features = np.empty((self._batch, self._model.feature_dimension), dtype=np.float32)
        with self._using() as ctx:
            status = self._lib.mnv3_run(ctx, x.ctypes.data, x.size, logits.ctypes.data,
                                        logits.size, features.ctypes.data, features.size)
        check(status, None, "inference")
        return logits, features

    def predict_quantized(self, x: ArrayLike) -> QuantizedPrediction:
        """Runs a quantized model on input that is already quantized (bytes of its input
        type, shape :attr:`input_shape`) and returns its quantized logits as well as the
        dequantized ones: the camera path. Raises :class:`~mnv3.UnsupportedError` for a
        float model, :class:`~mnv3.InvalidArgumentError` for bytes of the other type."""
        q, lq = self._model.input_quantization, self._model.logits_quantization
        if q is None or lq is None:
            raise UnsupportedError(f"quantized input needs a quantized model; this one is "
                                   f"{self._model.precision}")
        if not isinstance(x, np.ndarray):
            x = np.asarray(x, dtype=q.dtype)
        if x.dtype not in (np.uint8, np.int8):
            raise InvalidArgumentError(f"the model takes {q.type} input, got {x.dtype} values")
        x = self._input(x)
        logits = np.empty(self.output_shape, dtype=np.float32)
        quantized = np.empty(self.output_shape, dtype=lq.dtype)
        with self._using() as ctx:
            status = self._lib.mnv3_run_quantized(ctx, x.ctypes.data, x.size,
                                                  quantized.ctypes.data, quantized.size,
                                                  logits.ctypes.data, logits.size)
        check(status, None, "inference")
        return QuantizedPrediction(logits, quantized, lq)

    # -- images --------------------------------------------------------------------------

    def _preprocess_into(self, pixels: np.ndarray, dst: np.ndarray, quantized: bool) -> None:
        h, w = pixels.shape[:2]
        c = 1 if pixels.ndim == 2 else pixels.shape[2]
        if h >= 1 << 32 or w >= 1 << 32:
            raise InvalidArgumentError(f"an image of {w}x{h} pixels is too large")
        fn = (self._lib.mnv3_preprocess_image_quantized if quantized
              else self._lib.mnv3_preprocess_image)
        status = fn(self._model.handle, pixels.ctypes.data, h, w, c, self._size.height,
                    self._size.width, _native.LAYOUT[self._layout], dst.ctypes.data, dst.size)
        check(status, None, "preprocessing image")

    def _one_shape(self) -> Tuple[int, int, int]:
        h, w = self._size
        return (3, h, w) if self._layout == "nchw" else (h, w, 3)

    def preprocess(self, image: ImageLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """The network input for one image: decoded (see :func:`mnv3.read_image`), resized
        bilinearly (half-pixel centres) to :attr:`input_size` and normalised as the model's
        metadata says, by the C library's ``mnv3_preprocess_image``. float32, ``[3, H, W]``
        or ``[H, W, 3]`` by the session's layout; ``x[None]`` is a batch of one."""
        pixels, _ = load_pixels(image, max_pixels)
        out = np.empty(self._one_shape(), dtype=np.float32)
        self._preprocess_into(pixels, out, quantized=False)
        return out

    def preprocess_quantized(self, image: ImageLike, *,
                             max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """The same resize and normalisation for a quantized model, straight to its
        quantized input (``mnv3_preprocess_image_quantized``): the bytes that
        :meth:`preprocess` followed by quantization gives, uint8 or int8. Raises
        :class:`~mnv3.UnsupportedError` for a float model."""
        q = self._model.input_quantization
        if q is None:
            raise UnsupportedError(f"quantized preprocessing needs a quantized model; this one "
                                   f"is {self._model.precision}")
        pixels, _ = load_pixels(image, max_pixels)
        out = np.empty(self._one_shape(), dtype=q.dtype)
        self._preprocess_into(pixels, out, quantized=True)
        return out

    def classify(self, image: ImageLike, top: int = 5, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> List[Classification]:
        """Classifies one image and returns the ``top`` most likely classes, best first, as
        ``(index, label, probability)`` tuples with softmax probabilities.

        ``image`` is a file path (PNG, JPEG, binary PPM or PGM, recognised by content),
        the bytes of such a file, a PIL image, or a uint8 array ``[H, W, 3]`` (RGB; also
        ``[H, W]`` gray or ``[H, W, 4]`` RGBA). It is preprocessed as :meth:`preprocess`
        does, so the result is the ``mnv3 classify`` command-line tool's. A session with a
        batch above 1 pads the batch. Files claiming more than ``max_pixels`` pixels are
        refused before they are decoded."""
        return self._classify(image, top, max_pixels)[1]

    def _classify(self, image: ImageLike, top: int,
                  max_pixels: int) -> Tuple[ImageInfo, List[Classification]]:
        classes = self._model.classes
        k = min(integer(top, "top", 1, 1 << 31), classes)
        pixels, info = load_pixels(image, max_pixels)
        x = np.zeros(self._shape, dtype=np.float32)
        self._preprocess_into(pixels, x[0], quantized=False)
        logits = self.run(x)
        probs = np.empty((1, classes), dtype=np.float32)
        check(self._lib.mnv3_softmax(logits.ctypes.data, probs.ctypes.data, 1, classes), None,
              "softmax")
        indices = np.empty(k, dtype=np.uint32)
        check(self._lib.mnv3_top_k(probs.ctypes.data, classes, k, indices.ctypes.data), None,
              "top-k")
        return info, [Classification(int(i), self._model.label(int(i)), float(probs[0, i]))
                      for i in indices]

    def __repr__(self) -> str:
        state = "closed" if self._ctx is None else f"{self._isa}, {self._arithmetic}"
        return (f"<mnv3.Session {self._model.arch} {self._layout} {list(self._shape)}, "
                f"{self._threads} thread{'s' if self._threads != 1 else ''}, {state}>")
