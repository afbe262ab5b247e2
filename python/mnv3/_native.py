"""ctypes declarations of the C API (include/mnv3.h) and loading of the library.

The library is the ``libmnv3.so`` that ``pip install .`` builds next to this file, or the
one the environment variable ``MNV3_LIB`` names (any build of the same C API, such as the
Makefile's ``build/libmnv3.so``). It is loaded on first use, so that the pure-Python parts
of the package (:mod:`mnv3.convert`) work without it. Calls through ctypes release the GIL.
"""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, List, Optional

c_int, c_uint32, c_int32, c_uint64 = ctypes.c_int, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64
c_size_t, c_double, c_float = ctypes.c_size_t, ctypes.c_double, ctypes.c_float
c_char_p, c_void_p = ctypes.c_char_p, ctypes.c_void_p
POINTER = ctypes.POINTER

# enum values of include/mnv3.h
OK = 0
ERR_INVALID_ARGUMENT = 2
ERR_SHAPE = 3
ERR_OUT_OF_MEMORY = 6
ERR_IO = 7
ERR_UNSUPPORTED = 8

ARCH = {"custom": 0, "large": 1, "small": 2}
FLAVOR = {"custom": 0, "torchvision": 1, "walkthrough": 2, "tflite": 3}
ISA = {"auto": 0, "scalar": 1, "avx2": 2, "avx512": 3, "neon": 4}
LAYOUT = {"nchw": 0, "nhwc": 1}
WEIGHTS = {"float32": 0, "float16": 1, "int8": 2}
PRECISION = {0: "fp32", 1: "int8"}            # mnv3_precision of a model
PRECISION_MODE = {"exact": 0, "relaxed": 1}   # mnv3_precision_mode of a context
ARITHMETIC = {0: "fp32", 1: "fp16", 2: "bf16"}
QTYPE = {0: "int8", 1: "uint8"}
CHANNEL_ORDER = {0: "rgb", 1: "bgr"}
ACTIVATION = {0: "none", 1: "relu", 2: "relu6", 3: "hard_swish", 4: "hard_sigmoid"}
LAYER_KIND = {0: "conv", 1: "pointwise", 2: "depthwise", 3: "squeeze_excite",
              4: "global_pool", 5: "fully_connected"}

MIN_INPUT_SIZE = 32
MAX_INPUT_SIZE = 4096
MAX_THREADS = 256
MAX_BATCH = 4096

# Room after each structure the library fills in, in case a newer library has grown it.
_SPARE = 64


class Error(ctypes.Structure):
    _fields_ = [("status", c_int), ("message", ctypes.c_char * 256)]


class Preprocess(ctypes.Structure):
    _fields_ = [("height", c_uint32), ("width", c_uint32), ("channel_order", c_int),
                ("layout", c_int), ("scale", c_float), ("mean", c_float * 3),
                ("std", c_float * 3)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("arch", c_int), ("flavor", c_int), ("input_channels", c_uint32),
                ("num_classes", c_uint32), ("feature_dim", c_uint32), ("num_blocks", c_uint32),
                ("num_layers", c_uint32), ("parameters", c_uint64), ("stored_floats", c_uint64),
                ("has_labels", c_int), ("preprocess", Preprocess), ("precision", c_int),
                ("stored_bytes", c_uint64), ("_spare", ctypes.c_uint8 * _SPARE)]


class Quantization(ctypes.Structure):
    _fields_ = [("type", c_int), ("scale", c_float), ("zero_point", c_int32)]


class LayerInfo(ctypes.Structure):
    _fields_ = [("kind", c_int), ("block", c_int32), ("name", ctypes.c_char * 32),
                ("in_channels", c_uint32), ("out_channels", c_uint32), ("kernel", c_uint32),
                ("stride", c_uint32), ("in_height", c_uint32), ("in_width", c_uint32),
                ("out_height", c_uint32), ("out_width", c_uint32), ("activation", c_int),
                ("residual", c_int), ("macs", c_uint64), ("_spare", ctypes.c_uint8 * _SPARE)]


class Config(ctypes.Structure):
    _fields_ = [("batch", c_uint32), ("height", c_uint32), ("width", c_uint32),
                ("layout", c_int), ("threads", c_uint32), ("isa", c_int), ("profile", c_int),
                ("precision", c_int), ("_spare", ctypes.c_uint8 * _SPARE)]


class ArenaPlan(ctypes.Structure):
    _fields_ = [("total", c_size_t), ("activations", c_size_t),
                ("activation_lower_bound", c_size_t), ("packed_weights", c_size_t),
                ("scratch", c_size_t), ("context", c_size_t), ("isa", c_int),
                ("model_weights", c_size_t), ("_spare", ctypes.c_uint8 * _SPARE)]


_P = c_void_p
_E = POINTER(Error)
_PP = POINTER(c_void_p)

# name: (restype, argtypes)
_SIGNATURES = {
    "mnv3_status_string": (c_char_p, [c_int]),
    "mnv3_version_string": (c_char_p, []),
    "mnv3_version": (c_int, []),
    "mnv3_isa_name": (c_char_p, [c_int]),
    "mnv3_isa_from_name": (c_int, [c_char_p, POINTER(c_int)]),
    "mnv3_isa_available": (c_int, [c_int]),
    "mnv3_isa_best": (c_int, []),
    "mnv3_model_load_memory": (c_int, [_P, c_size_t, c_uint32, _PP, _E]),
    "mnv3_model_load_file": (c_int, [c_char_p, c_uint32, _PP, _E]),
    "mnv3_model_create_builtin": (c_int, [c_int, c_int, c_double, c_uint32, c_uint64, _PP, _E]),
    "mnv3_model_create_builtin_int8": (c_int, [c_int, c_int, c_double, c_uint32, c_uint64,
                                               _PP, _E]),
    "mnv3_model_save_memory": (c_int, [_P, _P, c_size_t, POINTER(c_size_t), _E]),
    "mnv3_model_save_file": (c_int, [_P, c_char_p, _E]),
    "mnv3_model_free": (None, [_P]),
    "mnv3_model_weight_type": (c_int, [_P]),
    "mnv3_model_convert_weights": (c_int, [_P, c_int, _PP, _E]),
    "mnv3_model_quantization": (c_int, [_P, POINTER(Quantization), POINTER(Quantization)]),
    "mnv3_model_get_info": (c_int, [_P, POINTER(ModelInfo)]),
    "mnv3_model_label": (c_char_p, [_P, c_uint32]),
    "mnv3_model_macs": (c_int, [_P, c_uint32, c_uint32, POINTER(c_uint64)]),
    "mnv3_model_layer": (c_int, [_P, c_uint32, c_uint32, c_uint32, POINTER(LayerInfo)]),
    "mnv3_arithmetic_name": (c_char_p, [c_int]),
    "mnv3_config_init": (None, [POINTER(Config), _P]),
    "mnv3_arena_plan_for": (c_int, [_P, POINTER(Config), POINTER(ArenaPlan), _E]),
    "mnv3_arena_size": (c_int, [_P, POINTER(Config), POINTER(c_size_t), _E]),
    "mnv3_context_create": (c_int, [_P, POINTER(Config), _P, c_size_t, _PP, _E]),
    "mnv3_context_free": (None, [_P]),
    "mnv3_run": (c_int, [_P, _P, c_size_t, _P, c_size_t, _P, c_size_t]),
    "mnv3_run_quantized": (c_int, [_P, _P, c_size_t, _P, c_size_t, _P, c_size_t]),
    "mnv3_context_isa": (c_int, [_P]),
    "mnv3_context_arithmetic": (c_int, [_P]),
    "mnv3_context_int8_kernels": (c_char_p, [_P]),
    "mnv3_context_threads": (c_uint32, [_P]),
    "mnv3_context_layer_ns": (c_uint64, [_P, c_uint32]),
    "mnv3_softmax": (c_int, [_P, _P, c_size_t, c_size_t]),
    "mnv3_top_k": (c_int, [_P, c_size_t, c_uint32, _P]),
    "mnv3_preprocess_image": (c_int, [_P, _P, c_uint32, c_uint32, c_uint32, c_uint32, c_uint32,
                                      c_int, _P, c_size_t]),
    "mnv3_preprocess_image_quantized": (c_int, [_P, _P, c_uint32, c_uint32, c_uint32, c_uint32,
                                                c_uint32, c_int, _P, c_size_t]),
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_path: Optional[str] = None


def _candidates() -> List[str]:
    env = os.environ.get("MNV3_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, name) for name in ("libmnv3.so", "libmnv3.dylib")]


def lib() -> Any:
    """The loaded library, its functions declared. Raises ImportError when it cannot be
    loaded (the package was not installed with ``pip install .``, or ``MNV3_LIB`` names a
    file that is not an mnv3 library)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = _candidates()
        path = next((p for p in tried if os.path.exists(p)), None)
        if path is None:
            raise ImportError(
                "the mnv3 C library is not built: install the package with `pip install .` "
                "at the repository root, or set MNV3_LIB to a libmnv3.so (`make lib` writes "
                f"build/libmnv3.so); looked for {', '.join(tried)}")
        try:
            loaded = ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"cannot load the mnv3 C library {path}: {e}") from e
        missing = [name for name in _SIGNATURES if not hasattr(loaded, name)]
        if missing:
            raise ImportError(f"{path} is not a complete mnv3 library: it lacks "
                              f"{', '.join(missing)}")
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(loaded, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _path = path
        _lib = loaded
        return loaded


def library_path() -> str:
    """The file the C library was loaded from (loading it if needed)."""
    lib()
    assert _path is not None
    return _path


def text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""
