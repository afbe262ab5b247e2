#!/usr/bin/env python3
"""Side-by-side latency of mnv3 against ONNX Runtime, LiteRT (XNNPACK) and ncnn.

All engines run the same MobileNetV3 architecture (torchvision's definition) with the same
weights, on the same input array, with the same thread count, in one process. Each
measured iteration runs every engine once, in an order rotated every iteration, so that
load from other tenants of a shared machine affects all engines alike.

    python3 tools/bench_peers.py [--arch large|small|both] [--threads 1 2] [--runs N]
                                 [--warmup N] [--resolution 224] [--json OUT] [--markdown]
                                 [--precision fp32|int8]

--precision int8 adds, in the same interleaved run as the fp32 engines: ONNX Runtime on
per-channel QDQ models that onnxruntime.quantization makes from the same fp32 export (int8
activations, and uint8 activations, its faster path on x86 without VNNI); LiteRT on the
full-int8 TFLite models of ../shared/models; the shipped uint8 Small on LiteRT; mnv3 on
the same TFLite files; ncnn int8 when its quantization tools are on PATH. It prints each engine's int8 / fp32 ratio and correctness
checks: LiteRT's default kernels against its reference kernels (BUILTIN_REF), ONNX
Runtime int8 against its fp32 model.

Converted models are cached under build/peers/. Engines whose Python package is missing
(or whose conversion fails) are skipped with a message. mnv3 is called through its Python
package (`mnv3.Session.run`; python/mnv3, or the installed one) on build/libmnv3.so
(`make lib`) when it exists, else on the library `pip install .` built (MNV3_LIB names
another); it loads the same weights from a .mnv3 file written by
tools/export_torchvision.py when that exporter is available, and otherwise falls back to
the built-in architecture with pseudo-random weights (timing only; no correctness check is
possible then).

See docs/benchmarks.md for the method.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
CONVERT = os.path.join(ROOT, "python", "mnv3", "convert")
PEERS_DIR = os.path.join(ROOT, "build", "peers")
CACHE_VERSION = "2"  # bump when a conversion changes
ENGINE_ORDER = ["mnv3", "onnxruntime", "litert-xnnpack", "ncnn"]

if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
# The mnv3 package: the installed one, else this checkout's (python/), which then runs the
# library of MNV3_LIB or build/libmnv3.so.
if os.path.join(ROOT, "python") not in sys.path:
    sys.path.append(os.path.join(ROOT, "python"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def captured_fds(path: Optional[str] = None):
    """Redirects the process-level stdout/stderr (C++ libraries print there) to a file.
    Yields a callable returning the captured text."""
    sys.stdout.flush()
    sys.stderr.flush()
    tmp = open(path, "w+b") if path else tempfile.TemporaryFile()
    saved = os.dup(1), os.dup(2)
    os.dup2(tmp.fileno(), 1)
    os.dup2(tmp.fileno(), 2)
    text = {"value": ""}
    try:
        yield lambda: text["value"]
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        tmp.seek(0)
        text["value"] = tmp.read().decode("utf-8", "replace")
        tmp.close()


# ------------------------------------------------------------------------------------
# torch model and weights
# ------------------------------------------------------------------------------------

def import_torchvision():
    """torchvision's compiled ops may not load against the installed torch; the model
    definitions do, once torch.library.register_fake is neutralised."""
    try:
        from mnv3.convert._torchvision_compat import import_torchvision as compat_import
    except ImportError:
        compat_import = None
    if compat_import is not None:
        return compat_import()
    else:
        import torch
        import torch.library

        def _no_fake(*_args, **_kwargs):
            def deco(fn):
                return fn
            return deco
        torch.library.register_fake = _no_fake
    importlib.import_module("torchvision.models")
    return importlib.import_module("torchvision")


def synthetic_weights(arch: str, seed: int):
    """Deterministic weights whose activations stay O(1) all the way through: torchvision's
    own initialisation, randomised BatchNorm affine parameters, then BatchNorm statistics
    calibrated on random inputs (so folding BatchNorm matters and the logits are not
    vanishingly small)."""
    import torch
    tv = import_torchvision()
    torch.manual_seed(seed)
    model = getattr(tv.models, f"mobilenet_v3_{arch}")()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.25, 0.25)
                m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(4):
            model(torch.randn(8, 3, 224, 224))
    model.eval()
    with torch.no_grad():
        # Scale the classifier so that logits have a realistic size (a few units).
        last = model.classifier[-1]
        spread = float(model(torch.randn(8, 3, 224, 224)).std())
        last.weight.mul_(3.0 / spread)
        last.bias.mul_(3.0 / spread)
    return model.state_dict()


def load_model(arch: str, state_dict):
    tv = import_torchvision()
    model = getattr(tv.models, f"mobilenet_v3_{arch}")()
    model.load_state_dict(state_dict)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ------------------------------------------------------------------------------------
# mnv3 through its Python package
# ------------------------------------------------------------------------------------

MNV3_MISSING = ("mnv3 not available: neither build/libmnv3.so (`make lib`) nor an installed "
                "mnv3 package (`pip install .`); MNV3_LIB names another library")


def display_path(path: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return os.path.basename(path) if rel.startswith("..") else rel


def sources_hash(names: List[str]) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    for n in names:
        try:
            path = os.path.join(CONVERT, n)  # the converters, else a tools/ script
            with open(path if os.path.exists(path) else os.path.join(TOOLS, n), "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"-")
    return h.hexdigest()[:8]


def warn_if_stale(lib_path: str) -> None:
    """build/libmnv3.so is built by `make`; say so when the C sources are newer."""
    try:
        built = os.path.getmtime(lib_path)
    except OSError:
        return
    newest, newest_name = 0.0, ""
    for d in ("csrc", "include"):
        for folder, _, files in os.walk(os.path.join(ROOT, d)):
            for n in files:
                if n.endswith((".c", ".h")):
                    t = os.path.getmtime(os.path.join(folder, n))
                    if t > newest:
                        newest, newest_name = t, os.path.relpath(os.path.join(folder, n), ROOT)
    if newest > built:
        log(f"warning: {display_path(lib_path)} is older than {newest_name}; "
            "run `make lib` to benchmark the current sources")


def find_libmnv3() -> Optional[str]:
    """The library to benchmark when it is not the package's own: MNV3_LIB, else
    build/libmnv3.so (`make lib`, the Makefile's build: OpenMP threads where the compiler
    has them)."""
    env = os.environ.get("MNV3_LIB")
    candidates = [env] if env else []
    candidates += [os.path.join(ROOT, "build", "libmnv3.so"),
                   os.path.join(ROOT, "build", "libmnv3.dylib")]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    return None


def load_mnv3():
    """The mnv3 package with its C library loaded, or None (with a message). The library is
    find_libmnv3()'s when there is one, else the package's own."""
    path = find_libmnv3()
    if path and not os.environ.get("MNV3_LIB"):
        os.environ["MNV3_LIB"] = path
    try:
        import mnv3
        mnv3.library_path()  # loads it
    except ImportError as e:
        log(f"mnv3: {e}; benchmarking the peers only")
        return None
    if path:
        warn_if_stale(mnv3.library_path())
    return mnv3


def mnv3_detail(m, session) -> str:
    return (f"mnv3 {m.library_version()} (Python package, "
            f"{display_path(m.library_path())}), isa={session.isa}")


# ------------------------------------------------------------------------------------
# Engines. Each prepare_* returns an Engine or raises Skip.
# ------------------------------------------------------------------------------------

class Skip(Exception):
    pass


class Engine:
    def __init__(self, name: str, run: Callable[[], None], output: Callable[[], np.ndarray],
                 detail: str, close: Callable[[], None] = lambda: None,
                 same_weights: bool = True):
        self.name, self.run, self.output, self.detail = name, run, output, detail
        self.close = close
        self.same_weights = same_weights


def module_version(mod: str, dist: Optional[str] = None) -> Optional[str]:
    try:
        from importlib import metadata
        return metadata.version(dist or mod)
    except Exception:
        try:
            return getattr(importlib.import_module(mod), "__version__", "?")
        except Exception:
            return None


def export_onnx(model, x, path):
    import torch
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False,
                          input_names=["input"], output_names=["logits"], opset_version=17)


def import_onnxruntime():
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise Skip(f"onnxruntime not installed ({e}); pip install onnxruntime")
    return ort


def ensure_onnx(paths, model, x) -> None:
    if not os.path.exists(paths["onnx"]):
        try:
            importlib.import_module("onnx")
        except ImportError as e:
            raise Skip(f"onnx not installed ({e}); pip install onnx")
        export_onnx(model, x, paths["onnx"] + ".tmp")
        os.replace(paths["onnx"] + ".tmp", paths["onnx"])


def ort_session(path: str, threads: int):
    ort = import_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_engine(name: str, path: str, x, threads: int, what: str = "") -> Engine:
    ort = import_onnxruntime()
    sess = ort_session(path, threads)
    out = np.empty(sess.get_outputs()[0].shape, dtype=np.float32)
    binding = sess.io_binding()
    binding.bind_cpu_input("input", x)
    binding.bind_output("logits", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
    opts = ort.RunOptions()

    def run():
        sess.run_with_iobinding(binding, opts)
    return Engine(name, run, lambda: out.copy(),
                  f"onnxruntime {ort.__version__}, {what}CPUExecutionProvider, "
                  f"intra_op={threads}, inter_op=1, sequential, ORT_ENABLE_ALL")


def prepare_onnxruntime(paths, model, x, threads):
    import_onnxruntime()
    ensure_onnx(paths, model, x)
    return ort_engine("onnxruntime", paths["onnx"], x, threads)


def import_litert():
    try:
        return importlib.import_module("ai_edge_litert.interpreter")
    except ImportError as e:
        raise Skip(f"ai-edge-litert not installed ({e}); pip install ai-edge-litert")


def prepare_litert(paths, model, x, threads):
    import_litert()
    if not os.path.exists(paths["tflite"]):
        try:
            from peers_tflite_builder import build_tflite
        except ImportError as e:
            raise Skip(f"cannot build the .tflite model ({e}); pip install tflite flatbuffers")
        data = build_tflite(model, x.shape[2])
        with open(paths["tflite"] + ".tmp", "wb") as f:
            f.write(data)
        os.replace(paths["tflite"] + ".tmp", paths["tflite"])
    return litert_engine("litert-xnnpack", paths["tflite"],
                         np.ascontiguousarray(x.transpose(0, 2, 3, 1)), threads)


def litert_engine(name: str, path: str, x_nhwc: np.ndarray, threads: int) -> Engine:
    """LiteRT with its default kernels (the XNNPACK delegate where it applies), input
    written into the interpreter once."""
    with captured_fds():
        interp = import_litert().Interpreter(model_path=path, num_threads=threads)
        interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outp = interp.get_output_details()[0]["index"]
    # The XNNPACK delegate is applied by default: it shows up as one DELEGATE node that
    # replaced the whole graph (from the graph input to the logits).
    try:
        delegates = [op for op in interp._get_ops_details() if op["op_name"] == "DELEGATE"]
    except Exception:
        delegates = []
    xnnpack = (len(delegates) == 1 and inp in list(delegates[0]["inputs"])
               and outp in list(delegates[0]["outputs"]))
    if xnnpack:
        coverage = "XNNPACK delegate runs the whole graph"
    else:
        log(f"{name}: the XNNPACK delegate does not cover the whole graph "
            f"({len(delegates)} delegated partition(s)); LiteRT runs some builtin kernels")
        coverage = (f"XNNPACK delegate NOT covering the graph ({len(delegates)} partitions, "
                    "builtin kernels between them)")
    interp.set_tensor(inp, x_nhwc)
    ver = module_version("ai_edge_litert", "ai-edge-litert")
    return Engine(name, interp.invoke, lambda: interp.get_tensor(outp).copy(),
                  f"ai-edge-litert {ver}, {display_path(path)}, "
                  f"Interpreter(num_threads={threads}), {coverage}, NHWC input")


def prepare_ncnn(paths, model, x, threads, half: bool = False):
    try:
        import ncnn
    except ImportError as e:
        raise Skip(f"ncnn not installed ({e}); pip install ncnn")
    if not (os.path.exists(paths["ncnn_param"]) and os.path.exists(paths["ncnn_bin"])):
        try:
            import pnnx
        except ImportError as e:
            raise Skip(f"pnnx not installed ({e}); pip install pnnx")
        import torch
        d = paths["dir"]
        work = os.path.join(d, "pnnx")
        os.makedirs(work, exist_ok=True)
        logfile = os.path.join(work, "pnnx.log")
        cwd = os.getcwd()
        try:
            os.chdir(work)
            with captured_fds(logfile):
                pnnx.export(model, os.path.join(work, "model.pt"), (torch.from_numpy(x),),
                            pnnxparam=os.path.join(work, "model.pnnx.param"),
                            pnnxbin=os.path.join(work, "model.pnnx.bin"),
                            pnnxpy=os.path.join(work, "model_pnnx.py"),
                            pnnxonnx=os.path.join(work, "model.pnnx.onnx"),
                            ncnnparam=paths["ncnn_param"] + ".tmp",
                            ncnnbin=paths["ncnn_bin"] + ".tmp",
                            ncnnpy=os.path.join(work, "model_ncnn.py"),
                            fp16=False)
        except Exception as e:
            raise Skip(f"pnnx conversion failed ({e}); see {os.path.relpath(logfile, ROOT)}")
        finally:
            os.chdir(cwd)
        if not os.path.exists(paths["ncnn_param"] + ".tmp"):
            raise Skip(f"pnnx wrote no ncnn model; see {os.path.relpath(logfile, ROOT)}")
        os.replace(paths["ncnn_bin"] + ".tmp", paths["ncnn_bin"])
        os.replace(paths["ncnn_param"] + ".tmp", paths["ncnn_param"])
    net = ncnn.Net()
    opt = net.opt
    opt.num_threads = threads
    opt.use_vulkan_compute = False
    # float32 throughout, for a like-for-like comparison; or (the relaxed-precision row)
    # ncnn's own fp16/bf16 storage and arithmetic, on where the CPU supports them.
    opt.use_fp16_packed = half
    opt.use_fp16_storage = half
    opt.use_fp16_arithmetic = half
    opt.use_bf16_storage = half
    if hasattr(opt, "use_bf16_packed"):
        opt.use_bf16_packed = half
    if net.load_param(paths["ncnn_param"]) != 0 or net.load_model(paths["ncnn_bin"]) != 0:
        raise Skip("ncnn could not load the converted model")
    mat = ncnn.Mat(np.ascontiguousarray(x[0]))
    holder = {"out": None}

    def run():
        ex = net.create_extractor()
        ex.input("in0", mat)
        status, out = ex.extract("out0")
        holder["out"] = out

    def output():
        run()
        return np.array(holder["out"]).reshape(1, -1).copy()
    return Engine("ncnn-fp16" if half else "ncnn", run, output,
                  f"ncnn {ncnn.__version__} (model by pnnx {module_version('pnnx') or '?'}), "
                  f"num_threads={threads}, "
                  + ("fp16/bf16 packed, storage and arithmetic on (used where the CPU has them), "
                     if half else "fp32 (fp16/bf16 storage and arithmetic off), ") +
                  f"openmp_blocktime={opt.openmp_blocktime}")


def prepare_mnv3(paths, model, x, threads, m, arch, weights_path, variant: str = "fp32"):
    """variant: fp32, fp16w (float16 weights, float32 arithmetic) or relaxed (float16 or
    bf16 products where the CPU has them). `m` is the mnv3 package (load_mnv3())."""
    if m is None:
        raise Skip(MNV3_MISSING)
    same = False
    why = ""
    exporter = os.path.join(TOOLS, "export_torchvision.py")
    if not os.path.exists(exporter):
        why = "tools/export_torchvision.py not present"
    else:
        if not os.path.exists(paths["mnv3"]):
            cmd = [sys.executable, exporter, "--arch", arch, "--flavor", "torchvision",
                   "--weights", weights_path, "-o", paths["mnv3"] + ".tmp"]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0 or not os.path.exists(paths["mnv3"] + ".tmp"):
                why = "export_torchvision.py failed: " + (r.stderr.strip().splitlines() or
                                                            ["(no message)"])[-1]
            else:
                os.replace(paths["mnv3"] + ".tmp", paths["mnv3"])
        if os.path.exists(paths["mnv3"]):
            same = True
    if same:
        net = m.Model(paths["mnv3"])
        source = "same weights (.mnv3 from tools/export_torchvision.py)"
    else:
        log(f"mnv3: {why}; timing the built-in {arch} architecture with pseudo-random "
            "weights (no correctness check)")
        net = m.Model.builtin(arch=arch, seed=1)
        source = "built-in architecture, pseudo-random weights"
    if variant == "fp16w":
        net = net.converted(weights="float16")
        source += ", weights stored as float16"
    session = m.Session(net, threads=threads, height=x.shape[2], width=x.shape[3],
                        precision="relaxed" if variant == "relaxed" else "exact")
    out = np.zeros(session.output_shape, dtype=np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)  # read in place by every run

    def run():
        session.run(x, out=out)

    return Engine("mnv3" if variant == "fp32" else f"mnv3-{variant}", run, lambda: out.copy(),
                  f"{mnv3_detail(m, session)}, {session.arithmetic} arithmetic, "
                  f"threads={session.threads}, NCHW input; {source}",
                  close=session.close, same_weights=same)


# ------------------------------------------------------------------------------------
# int8 (--precision int8): the same quantized network on every engine that can run it
# ------------------------------------------------------------------------------------

SHARED = os.environ.get("MNV3_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
PHOTOS = ("chelsea", "coffee")
# Full-integer TFLite graphs as TensorFlow's converter writes them from Keras, and the
# shipped uint8 (quantization-aware trained) Small, all in ../shared/models.
INT8_TFLITE = {"large": "mobilenet_v3_large_int8_seed1", "small": "mobilenet_v3_small_int8_seed1"}
UINT8_TFLITE = {"small": "mobilenet_v3_small_1.0_224_uint8"}
INT8_ENGINES = ["mnv3-int8", "onnxruntime-int8", "onnxruntime-u8s8", "litert-int8",
                "ncnn-int8", "mnv3-uint8", "litert-uint8"]
# The fp32 engines run in the same interleaved measurement, so that int8 / fp32 ratios come
# from one run. ncnn fp32 is left out unless asked for: no int8 ratio needs it.
INT8_ENGINE_ORDER = ENGINE_ORDER + INT8_ENGINES
# --precision half: the fp32 rows beside mnv3 with float16 weights, mnv3 with relaxed
# precision and ncnn with its fp16/bf16 options, in one interleaved measurement. ONNX Runtime's
# CPU provider has no float16 convolution kernels (a float16 model runs through casts to
# float32), so it has no row of its own here.
HALF_ENGINES = ["mnv3-fp16w", "mnv3-relaxed", "ncnn-fp16"]
INT8_DEFAULT_ENGINES = [n for n in INT8_ENGINE_ORDER if n != "ncnn"]
# Ratios an int8 run reports (numerator median / denominator median, one run).
INT8_RATIOS = [("mnv3-int8", "onnxruntime-int8"), ("mnv3-int8", "onnxruntime-u8s8"),
               ("mnv3-int8", "litert-int8"), ("mnv3-int8", "mnv3"),
               ("mnv3-uint8", "litert-uint8"), ("onnxruntime-int8", "onnxruntime"),
               ("onnxruntime-u8s8", "onnxruntime"), ("litert-int8", "litert-xnnpack"),
               ("litert-int8", "onnxruntime-int8"), ("litert-int8", "onnxruntime-u8s8"),
               ("litert-uint8", "litert-int8")]
CALIBRATION_INPUTS = 16  # the photos themselves, then variations of them
HELD_OUT_INPUTS = 8      # other variations, for the ORT int8 / fp32 agreement
# onnxruntime-int8 is what the quantizer makes with int8 activations (S8S8). On x86 without
# VNNI, ONNX Runtime turns only some of that model's convolutions into integer ones, and is
# much faster with uint8 activations and int8 weights (U8S8), hence a second row.
QDQ_SETTINGS = {"onnxruntime-int8": "QDQ, per-channel, int8 weights and activations, MinMax",
                "onnxruntime-u8s8": "QDQ, per-channel, int8 weights, uint8 activations, MinMax"}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def shared_file(*parts: str) -> str:
    return os.path.join(SHARED, *parts)


def load_photos() -> List[np.ndarray]:
    """The shared photos' exact 224x224 model inputs (uint8, 1x224x224x3); [] without them."""
    photos = []
    for name in PHOTOS:
        path = shared_file("images", f"{name}_224_nhwc_uint8.npy")
        if os.path.exists(path):
            photos.append(np.load(path))
    return photos


def photo_variations(photos: List[np.ndarray], count: int, seed: int,
                     originals: bool = False) -> List[np.ndarray]:
    """`count` deterministic uint8 NHWC images made from `photos`: shifted by up to 16
    pixels (edges replicated), mirrored or not, contrast and brightness changed, a little
    noise. With `originals` the photos themselves come first."""
    out = [p.copy() for p in photos[:count]] if originals else []
    k = 0
    while len(out) < count:
        rng = np.random.default_rng([seed, k])
        src = photos[k % len(photos)][0].astype(np.float32)
        h, w, _ = src.shape
        dy, dx = (int(v) for v in rng.integers(-16, 17, size=2))
        padded = np.pad(src, ((16, 16), (16, 16), (0, 0)), mode="edge")
        img = padded[16 + dy:16 + dy + h, 16 + dx:16 + dx + w]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = (img - 128.0) * rng.uniform(0.7, 1.3) + 128.0 + rng.uniform(-25.0, 25.0)
        img = img + rng.normal(0.0, 4.0, img.shape)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8)[None])
        k += 1
    return out


def imagenet_nchw(image: np.ndarray) -> np.ndarray:
    """uint8 1xHxWx3 RGB -> the float 1x3xHxW input of torchvision's models."""
    x = (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def quantize(real: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.rint(real / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def quantized_max_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Max |a - b| of two 8-bit tensors, in quantized units (no wrap-around)."""
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def top1_agreement(a: List[np.ndarray], b: List[np.ndarray]) -> int:
    return sum(int(np.argmax(p)) == int(np.argmax(q)) for p, q in zip(a, b))


def int8_ratios(medians: Dict[str, float]) -> Dict[str, float]:
    return {f"{a} / {b}": medians[a] / medians[b] for a, b in INT8_RATIOS
            if a in medians and b in medians}


def ncnn_int8_skip_reason(which: Callable[[str], Optional[str]] = shutil.which) -> str:
    """ncnn quantizes with two command-line tools built from its source tree; neither the
    ncnn / pnnx wheels nor Debian ship them."""
    found = {t: which(t) for t in ("ncnn2table", "ncnn2int8")}
    missing = [t for t, p in found.items() if not p]
    if missing:
        return (f"{' and '.join(missing)} not found: the PyPI wheels ncnn and pnnx do not "
                "include ncnn's quantization tools and Debian has no ncnn package; build "
                "them from ncnn's tools/quantize and put them on PATH")
    return (f"ncnn2table and ncnn2int8 found ({found['ncnn2table']}), but this script does "
            "not drive them yet")


def skip(reason: str) -> Engine:
    raise Skip(reason)


def make_qdq_model(fp32_path: str, out_path: str, calibration: List[np.ndarray],
                   uint8_activations: bool = False) -> None:
    """Static per-channel QDQ quantization of the fp32 export with onnxruntime.quantization,
    int8 weights, calibrated (MinMax) on `calibration` (float NCHW inputs)."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                              QuantFormat, QuantType, quantize_static)
    except ImportError as e:
        raise Skip(f"onnxruntime.quantization unavailable ({e})")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {"input": item}

    source = fp32_path
    with tempfile.TemporaryDirectory() as tmp:
        try:  # shape inference and graph cleanup, as onnxruntime recommends
            from onnxruntime.quantization.shape_inference import quant_pre_process
            pre = os.path.join(tmp, "pre.onnx")
            with captured_fds():
                quant_pre_process(fp32_path, pre)
            source = pre
        except Exception as e:
            log(f"onnxruntime-int8: quant_pre_process failed ({type(e).__name__}: {e}); "
                "quantizing the export as it is")
        with captured_fds():
            quantize_static(source, out_path + ".tmp", Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True,
                            activation_type=QuantType.QUInt8 if uint8_activations
                            else QuantType.QInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
    os.replace(out_path + ".tmp", out_path)


def litert_reference_check(path: str, inputs: Dict[str, np.ndarray]) -> Dict[str, object]:
    """LiteRT's default kernels against its reference kernels (BUILTIN_REF) on the same
    quantized inputs. Returns the max |Δ| in quantized units of the output and of the logits
    (SOFTMAX's input), and the reference logits with their quantization."""
    import warnings
    litert = import_litert()

    def interpreter(**kw):
        with captured_fds(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # preserve_all_tensors "for debugging only"
            it = litert.Interpreter(model_path=path, num_threads=1, **kw)
            it.allocate_tensors()
        return it

    def run(it, x, tensor):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(tensor).copy()

    ref = interpreter(experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
                      experimental_preserve_all_tensors=True)
    # Intermediate tensors are readable only when preserved, which splits the XNNPACK
    # partitions differently; the output is compared from the configuration timed.
    opt_all = interpreter(experimental_preserve_all_tensors=True)
    opt = interpreter()
    softmax = [op for op in ref._get_ops_details() if op["op_name"] == "SOFTMAX"]
    if len(softmax) != 1:
        raise Skip(f"{display_path(path)}: expected one SOFTMAX, found {len(softmax)}")
    logits = int(softmax[0]["inputs"][0])
    scale, zero_point = [t for t in ref.get_tensor_details() if t["index"] == logits][0][
        "quantization"]
    out = opt.get_output_details()[0]["index"]
    result: Dict[str, object] = {"logits_max_diff": 0, "output_max_diff": 0,
                                 "ref_logits": {}, "logits_quantization": (scale, zero_point)}
    for name, x in inputs.items():
        ref_logits = run(ref, x, logits)
        ref_out = ref.get_tensor(ref.get_output_details()[0]["index"])
        result["ref_logits"][name] = ref_logits
        result["logits_max_diff"] = max(result["logits_max_diff"],
                                        quantized_max_diff(run(opt_all, x, logits), ref_logits))
        result["output_max_diff"] = max(result["output_max_diff"],
                                        quantized_max_diff(run(opt, x, out), ref_out))
    return result


# The int8 C API the mnv3 rows assume; see prepare_mnv3_quantized.
def prepare_mnv3_quantized(m, name: str, threads: int, qinput: np.ndarray, classes: int,
                           tflite_path: Optional[str] = None,
                           builtin_arch: Optional[str] = None,
                           expected: Optional[Dict[str, object]] = None) -> Engine:
    """mnv3 on an int8 network, fed the same quantized bytes as LiteRT: the .mnv3 file that
    `tools/import_tflite.py TFLITE -o OUT` writes from `tflite_path` (the file LiteRT runs),
    or, without a file or when the importer cannot write a quantized one, the built-in
    `builtin_arch` int8 network (timing only: other weights). `m` is the mnv3 package; the
    row runs Session.predict_quantized on NHWC input, whose quantized logits (the input of
    the source model's softmax) it reports.

    `expected` (from litert_reference_check plus the inputs) makes the row compare those
    logits with TFLite's reference kernels on the shared photos."""
    if m is None:
        raise Skip(MNV3_MISSING)
    model, source, why = None, "", ""
    if tflite_path:
        try:
            model = m.Model(imported_mnv3(tflite_path))
            source = f".mnv3 imported from {os.path.basename(tflite_path)}"
            if not model.quantized:
                model, why = None, "tools/import_tflite.py wrote a float32 model"
        except (m.Error, Skip) as e:
            why = str(e)
    if model is None and builtin_arch:
        model = m.Model.builtin(arch=builtin_arch, classes=classes, seed=1, precision="int8")
        source = "built-in int8 network, pseudo-random weights (timing only)"
        expected = None
    if model is None:
        raise Skip(f"mnv3 int8 not available: {why or 'no int8 model'}")
    session = m.Session(model, threads=threads, layout="nhwc", height=qinput.shape[1],
                        width=qinput.shape[2])  # NHWC, as TFLite
    # The logits come in the input's type: uint8 models keep uint8 at both ends.
    out = np.zeros((1, classes), dtype=qinput.dtype)

    def run_on(x):
        out[:] = session.predict_quantized(x).quantized_logits
    checks = ""
    if expected:
        worst = 0
        for photo, x in expected["inputs"].items():
            run_on(x)
            worst = max(worst, quantized_max_diff(out[0], expected["ref_logits"][photo][0]))
        checks = f"; logits vs BUILTIN_REF max |Δ| {worst} quantized units"
    return Engine(name, lambda: run_on(qinput), lambda: out.copy(),
                  f"{mnv3_detail(m, session)}, threads={session.threads}, {qinput.dtype} NHWC "
                  f"input; {source}{checks}", close=session.close, same_weights=False)


def imported_mnv3(tflite_path: str) -> str:
    """tools/import_tflite.py's .mnv3 of a TFLite file, cached under build/peers/int8/."""
    with open(tflite_path, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:12]
    d = os.path.join(PEERS_DIR, "int8")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, f"{os.path.splitext(os.path.basename(tflite_path))[0]}-{key}-"
                       f"{sources_hash(['import_tflite.py', 'modelfile.py'])}.mnv3")
    if not os.path.exists(out):
        r = subprocess.run([sys.executable, os.path.join(TOOLS, "import_tflite.py"),
                            tflite_path, "-o", out + ".tmp"], cwd=ROOT, capture_output=True,
                           text=True)
        if r.returncode != 0 or not os.path.exists(out + ".tmp"):
            last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise Skip(f"tools/import_tflite.py could not import "
                       f"{os.path.basename(tflite_path)}: {last}")
        os.replace(out + ".tmp", out)
    return out


class Int8Rows:
    """What the int8 rows of one architecture share across thread counts: the quantized
    models and inputs, and the correctness checks, made once."""

    def __init__(self, arch: str, engines: List[str], lib, model, x,
                 paths: Dict[str, str], photos: List[np.ndarray], seed: int = 0):
        self.arch, self.lib, self.model, self.x, self.paths = arch, lib, model, x, paths
        self.seed = seed
        self.checks: Dict[str, str] = {}
        self.tflite: Dict[str, Dict[str, object]] = {}
        files = {"int8": INT8_TFLITE.get(arch), "uint8": UINT8_TFLITE.get(arch)}
        for kind, stem in files.items():
            wanted = {f"litert-{kind}", f"mnv3-{kind}"} & set(engines)
            if not stem or not wanted:
                if not stem and wanted:
                    log(f"skip {', '.join(sorted(wanted))}: no {kind} TFLite model of "
                        f"MobileNetV3-{arch.capitalize()} in ../shared (the shipped uint8 "
                        "model is Small only)")
                continue
            self.tflite[kind] = self.quantized_file(kind, stem)
        ort_rows = [n for n in QDQ_SETTINGS if n in engines]
        if ort_rows:
            self.calibration, self.held_out = self.ort_inputs(photos)
            self.calibration_key = hashlib.sha256(
                CACHE_VERSION.encode()
                + b"".join(v.tobytes() for v in self.calibration)).hexdigest()[:8]
        for name in ort_rows:
            self.check(name, lambda n=name: self.ort_check(n))

    def check(self, name: str, fn: Callable[[], str]) -> None:
        try:
            self.checks[name] = fn()
        except Skip as e:
            self.checks[name] = f"not checked: {e}"
        except Exception as e:  # a failed check must not stop the run
            self.checks[name] = f"not checked: {type(e).__name__}: {e}"
        log(f"check {name}: {self.checks[name]}")

    def quantized_file(self, kind: str, stem: str) -> Dict[str, object]:
        path = shared_file("models", f"{stem}.tflite")
        entry: Dict[str, object] = {"path": path, "stem": stem}
        if not os.path.exists(path):
            entry["missing"] = f"{display_path(path)} absent (../shared/models)"
            return entry
        inputs = {}
        for name in PHOTOS:
            ref_input = shared_file("reference", f"{stem}__{name}__input.npy")
            if os.path.exists(ref_input):
                inputs[name] = np.load(ref_input)
        if not inputs:
            entry["missing"] = f"no quantized inputs for {stem} in ../shared/reference"
            return entry
        entry["inputs"] = inputs
        entry["qinput"] = inputs[PHOTOS[0]] if PHOTOS[0] in inputs else next(iter(inputs.values()))

        def litert_check() -> str:
            r = litert_reference_check(path, inputs)
            entry["expected"] = dict(r, inputs=inputs)
            stored = [shared_file("reference", f"{stem}__{n}__ref_logits.npy") for n in inputs]
            same = all(os.path.exists(s) and np.array_equal(np.load(s), r["ref_logits"][n])
                       for s, n in zip(stored, inputs))
            return (f"LiteRT default kernels vs BUILTIN_REF on {', '.join(inputs)}: max |Δ| "
                    f"{r['output_max_diff']} (quantized output), {r['logits_max_diff']} "
                    f"(quantized logits); BUILTIN_REF logits "
                    f"{'identical to' if same else 'DIFFER from'} ../shared/reference")
        self.check(f"litert-{kind}", litert_check)
        return entry

    def ort_inputs(self, photos):
        if photos:
            calibration = [imagenet_nchw(p) for p in
                           photo_variations(photos, CALIBRATION_INPUTS, 0, originals=True)]
            held_out = [imagenet_nchw(p) for p in photo_variations(photos, HELD_OUT_INPUTS, 1)]
            self.calibrated_on = (f"the {len(photos)} shared photos and variations of them, "
                                  f"{CALIBRATION_INPUTS} in all")
        else:  # the input measured first, then more of its kind
            rng = np.random.default_rng(self.seed + 1)
            calibration = [self.x] + [rng.standard_normal(self.x.shape).astype(np.float32)
                                      for _ in range(CALIBRATION_INPUTS - 1)]
            held_out = [rng.standard_normal(self.x.shape).astype(np.float32)
                        for _ in range(HELD_OUT_INPUTS)]
            self.calibrated_on = f"{CALIBRATION_INPUTS} standard-normal inputs"
        return calibration, held_out

    def qdq_path(self, name: str) -> str:
        u8 = name == "onnxruntime-u8s8"
        path = os.path.join(self.paths["dir"], f"model-{self.x.shape[2]}-qdq-"
                            f"{'u8s8' if u8 else 's8s8'}-{self.calibration_key}.onnx")
        if not os.path.exists(path):
            import_onnxruntime()
            ensure_onnx(self.paths, self.model, self.x)
            make_qdq_model(self.paths["onnx"], path, self.calibration, uint8_activations=u8)
        return path

    def ort_check(self, name: str) -> str:
        qdq = self.qdq_path(name)
        fp32, int8 = ort_session(self.paths["onnx"], 1), ort_session(qdq, 1)
        a = [fp32.run(None, {"input": v})[0] for v in self.held_out]
        b = [int8.run(None, {"input": v})[0] for v in self.held_out]
        diff = max(float(np.abs(p - q).max()) for p, q in zip(a, b))
        top = max(float(np.abs(p).max()) for p in a)
        return (f"ORT QDQ vs ORT fp32 on {len(a)} held-out inputs: top-1 agrees on "
                f"{top1_agreement(a, b)}/{len(a)}, max |Δ logit| {diff:.3f} "
                f"(max |logit| {top:.2f})")

    def preparers(self, threads: int) -> Dict[str, Callable[[], Engine]]:
        p: Dict[str, Callable[[], Engine]] = {
            "ncnn-int8": lambda: skip(ncnn_int8_skip_reason()),
        }
        for name, what in QDQ_SETTINGS.items():
            p[name] = (lambda n=name, w=what: ort_engine(
                n, self.qdq_path(n), self.x, threads, f"{w} on {self.calibrated_on}, "))
        for kind, entry in self.tflite.items():
            p[f"litert-{kind}"] = (lambda e=entry, k=kind: self.litert(k, e, threads))
            p[f"mnv3-{kind}"] = (lambda e=entry, k=kind: self.mnv3(k, e, threads))
        if "int8" not in self.tflite:
            p["mnv3-int8"] = lambda: self.mnv3("int8", {}, threads)
        return p

    def litert(self, kind, entry, threads) -> Engine:
        if "missing" in entry:
            raise Skip(entry["missing"])
        import_litert()
        e = litert_engine(f"litert-{kind}", entry["path"], entry["qinput"], threads)
        e.same_weights = False
        return e

    def mnv3(self, kind, entry, threads) -> Engine:
        path = None if "missing" in entry else entry.get("path")
        if path is None and kind == "uint8":
            raise Skip(entry.get("missing", "no uint8 model"))
        qinput = entry.get("qinput")
        if qinput is None:  # no TFLite file: the built-in network on int8 zeros
            qinput = np.zeros((1, self.x.shape[2], self.x.shape[3], 3), dtype=np.int8)
        return prepare_mnv3_quantized(self.lib, f"mnv3-{kind}", threads, qinput,
                                      1001 if kind == "uint8" else 1000, tflite_path=path,
                                      builtin_arch=self.arch if kind == "int8" else None,
                                      expected=entry.get("expected"))


# ------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------

def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(engines: List[Engine], runs: int, warmup: int, settle: int,
            gap_s: float) -> Dict[str, List[float]]:
    """Round-robin: every iteration gives each engine one slot; the starting engine
    rotates so that no engine always follows the same one. A slot is `settle` untimed
    runs (they absorb the previous engine's thread-pool wind-down and cache eviction)
    followed by one timed run."""
    times: Dict[str, List[float]] = {e.name: [] for e in engines}
    n = len(engines)
    clock = time.perf_counter_ns
    for it in range(warmup + runs):
        for k in range(n):
            e = engines[(it + k) % n]
            if gap_s:
                time.sleep(gap_s)
            for _ in range(settle):
                e.run()
            t0 = clock()
            e.run()
            t1 = clock()
            if it >= warmup:
                times[e.name].append((t1 - t0) / 1e6)
    return times


# ------------------------------------------------------------------------------------
# Machine description
# ------------------------------------------------------------------------------------

def machine_info(lib) -> Dict[str, object]:
    info: Dict[str, object] = {}
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and "cpu" not in info:
                    info["cpu"] = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("Features") and not flags:  # ARM
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info.setdefault("cpu", model)
    info["arch"] = platform.machine()
    info["flags"] = [f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                 "avx512_vnni", "avx_vnni", "avx512_fp16", "asimd", "asimddp",
                                 "i8mm", "neon"] if f in flags]
    info["logical_cpus"] = os.cpu_count()
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cpus"] = os.cpu_count()
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    versions = {}
    if lib is not None:
        versions["mnv3"] = f"{lib.library_version()} (best isa: {lib.best_isa()})"
    for mod, dist in [("onnxruntime", None), ("ai_edge_litert", "ai-edge-litert"),
                      ("ncnn", None), ("pnnx", None), ("torch", None), ("torchvision", None),
                      ("onnx", None), ("tflite", None)]:
        v = module_version(mod, dist)
        if v:
            versions[dist or mod] = v
    info["versions"] = versions
    return info


# ------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------

def model_paths(arch: str, resolution: int, key: str) -> Dict[str, str]:
    d = os.path.join(PEERS_DIR, f"{arch}-{key}")
    os.makedirs(d, exist_ok=True)
    return {
        "dir": d,
        "weights": os.path.join(d, "weights.pth"),
        "onnx": os.path.join(d, f"model-{resolution}.onnx"),
        "tflite": os.path.join(d, f"model-{resolution}-"
                               f"{sources_hash(['peers_tflite_builder.py'])}.tflite"),
        "ncnn_param": os.path.join(d, f"model-{resolution}.ncnn.param"),
        "ncnn_bin": os.path.join(d, f"model-{resolution}.ncnn.bin"),
        "mnv3": os.path.join(d, "model-" + sources_hash(
            ["export_torchvision.py", "arch.py", "modelfile.py"]) + ".mnv3"),
    }


def get_weights(arch: str, weights: Optional[str], seed: int):
    import torch
    if weights:
        sd = torch.load(weights, map_location="cpu", weights_only=True)
        if "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        with open(weights, "rb") as f:
            key = "file-" + hashlib.sha256(f.read()).hexdigest()[:12]
        return sd, key, weights
    key = f"seed{seed}-v{CACHE_VERSION}"
    d = os.path.join(PEERS_DIR, f"{arch}-{key}")
    path = os.path.join(d, "weights.pth")
    if os.path.exists(path):
        return torch.load(path, map_location="cpu", weights_only=True), key, path
    os.makedirs(d, exist_ok=True)
    sd = synthetic_weights(arch, seed)
    torch.save(sd, path + ".tmp")
    os.replace(path + ".tmp", path)
    return sd, key, path


def bench_arch(arch, args, lib, results):
    import torch
    sd, key, weights_path = get_weights(arch, args.weights, args.seed)
    model = load_model(arch, sd)
    paths = model_paths(arch, args.resolution, key)
    if args.weights and not os.path.exists(paths["weights"]):
        torch.save(sd, paths["weights"])
        weights_path = paths["weights"]
    int8 = args.precision == "int8"
    # Trained weights (--weights) see photos; the synthetic weights' BatchNorm statistics
    # were calibrated on standard-normal inputs, and photos drive their activations far
    # outside that range (Large's logits reach thousands), so they keep standard-normal inputs.
    photos = load_photos() if int8 and args.weights else []
    if photos:
        x = imagenet_nchw(photos[0])
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((1, 3, args.resolution, args.resolution)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    order = INT8_ENGINE_ORDER if int8 else ENGINE_ORDER + HALF_ENGINES
    rows = Int8Rows(arch, args.engines, lib, model, x, paths, photos, args.seed) if int8 else None

    for threads in args.threads:
        engines: List[Engine] = []
        preparers = {
            "mnv3": lambda: prepare_mnv3(paths, model, x, threads, lib, arch, weights_path),
            "onnxruntime": lambda: prepare_onnxruntime(paths, model, x, threads),
            "litert-xnnpack": lambda: prepare_litert(paths, model, x, threads),
            "ncnn": lambda: prepare_ncnn(paths, model, x, threads),
            "mnv3-fp16w": lambda: prepare_mnv3(paths, model, x, threads, lib, arch, weights_path,
                                               "fp16w"),
            "mnv3-relaxed": lambda: prepare_mnv3(paths, model, x, threads, lib, arch,
                                                 weights_path, "relaxed"),
            "ncnn-fp16": lambda: prepare_ncnn(paths, model, x, threads, half=True),
        }
        if rows:
            preparers.update(rows.preparers(threads))
        for name in order:
            if name not in args.engines or name not in preparers:
                continue
            try:
                engines.append(preparers[name]())
            except Skip as e:
                log(f"skip {name}: {e}")
            except Exception as e:  # a broken optional engine must not stop the run
                log(f"skip {name}: {type(e).__name__}: {e}")
        if not engines:
            log(f"{arch}, {threads} thread(s): no engine available")
            continue
        errors = {}
        working = []
        for e in engines:
            try:
                e.run()
                out = np.asarray(e.output(), dtype=np.float32)
                if e.same_weights:
                    out = out.reshape(ref.shape)
            except Exception as exc:
                log(f"skip {e.name}: first inference failed: {type(exc).__name__}: {exc}")
                e.close()
                continue
            working.append(e)
            errors[e.name] = float(np.abs(out - ref).max()) if e.same_weights else None
        engines = working
        if not engines:
            continue
        log(f"{arch}, {threads} thread(s): {', '.join(e.name for e in engines)} "
            f"({args.warmup} warm-up + {args.runs} interleaved runs)")
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t_start = time.time()
        times = measure(engines, args.runs, args.warmup, args.settle, args.gap_ms / 1000.0)
        load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        wall = time.time() - t_start
        stats = {}
        for e in engines:
            t = times[e.name]
            stats[e.name] = {"median_ms": percentile(t, 50), "p10_ms": percentile(t, 10),
                             "p90_ms": percentile(t, 90), "min_ms": min(t),
                             "mean_ms": float(np.mean(t)), "runs": len(t),
                             "max_abs_diff_vs_torch": errors[e.name],
                             "same_weights": e.same_weights, "detail": e.detail}
        ratios = {}
        if "mnv3" in stats and not int8:
            for name, s in stats.items():
                if name != "mnv3":
                    ratios[name] = stats["mnv3"]["median_ms"] / s["median_ms"]
        results.append({"arch": arch, "threads": threads, "resolution": args.resolution,
                        "precision": args.precision, "engines": stats, "mnv3_ratio": ratios,
                        "ratios": int8_ratios({n: s["median_ms"] for n, s in stats.items()})
                        if int8 else {},
                        "checks": dict(rows.checks) if rows else {},
                        "torch_logits_max_abs": float(np.abs(ref).max()),
                        "loadavg_1min": [load_before, load_after], "wall_s": wall})
        print_result(results[-1])
        for e in engines:
            e.close()


def fmt(v, nd=2):
    return "—" if v is None else f"{v:.{nd}f}"


def print_result(r):
    print(f"\n== MobileNetV3-{r['arch'].capitalize()} {r['resolution']}x{r['resolution']}, "
          f"threads={r['threads']} ==")
    print(f"{'engine':<18}{'median ms':>10}{'p10':>9}{'p90':>9}{'mnv3/peer':>11}"
          f"{'max|Δ| vs torch':>18}")
    for name, s in r["engines"].items():
        ratio = r["mnv3_ratio"].get(name)
        err = s["max_abs_diff_vs_torch"]
        print(f"{name:<18}{s['median_ms']:>10.2f}{s['p10_ms']:>9.2f}{s['p90_ms']:>9.2f}"
              f"{fmt(ratio):>11}{('%.2e' % err) if err is not None else 'n/a':>18}")
    la = r["loadavg_1min"]
    print(f"(torch logits max |value| = {r['torch_logits_max_abs']:.2f}; "
          "mnv3/peer < 1 means mnv3 is faster; 1-min load average "
          f"{fmt(la[0])} -> {fmt(la[1])} over {r['wall_s']:.0f} s)")
    for name, s in r["engines"].items():
        print(f"  {name}: {s['detail']}")
    for pair, ratio in r.get("ratios", {}).items():
        print(f"  ratio {pair}: {ratio:.2f}")
    for name, text in r.get("checks", {}).items():
        print(f"  check {name}: {text}")
    sys.stdout.flush()


def markdown_machine(machine) -> List[str]:
    flags = ", ".join(machine["flags"]) or "none of avx2/fma/avx512f"
    return [f"Machine: {machine['cpu']} ({machine['arch']}, {flags}), "
            f"{machine['usable_cpus']} usable of {machine['logical_cpus']} logical CPUs, "
            f"{machine['os']}, Python {machine['python']}.", "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
            + ".", ""]


def markdown_int8(machine, results, args) -> str:
    lines = markdown_machine(machine)
    lines.append(f"Input {args.resolution}x{args.resolution}, batch 1; {args.warmup} warm-up + "
                 f"{args.runs} interleaved runs per engine, int8 and fp32 engines in the same "
                 "run; median (p10–p90) in ms; ratio = median / median (< 1: the first is "
                 "faster).")
    lines.append("")
    present = [n for n in INT8_ENGINE_ORDER if any(n in r["engines"] for r in results)]
    pairs = [f"{a} / {b}" for a, b in INT8_RATIOS
             if any(f"{a} / {b}" in r["ratios"] for r in results)]
    lines.append("| model | threads | engine | median ms |")
    lines.append("|---|---:|---|---:|")
    for r in results:
        for n in present:
            s = r["engines"].get(n)
            if s is not None:
                lines.append(f"| {r['arch']} | {r['threads']} | {n} | {s['median_ms']:.2f} "
                             f"({s['p10_ms']:.2f}–{s['p90_ms']:.2f}) |")
    lines.append("")
    lines.append("| model | threads | " + " | ".join(pairs) + " | load avg |")
    lines.append("|---|---:|" + "---:|" * (len(pairs) + 1))
    for r in results:
        la = r["loadavg_1min"]
        lines.append(f"| {r['arch']} | {r['threads']} | "
                     + " | ".join(fmt(r["ratios"].get(p)) for p in pairs)
                     + f" | {fmt(la[0], 1)}→{fmt(la[1], 1)} |")
    lines.append("")
    seen = set()
    for r in results:
        if r["arch"] in seen:
            continue
        seen.add(r["arch"])
        for name, text in r["checks"].items():
            lines.append(f"- {r['arch']}, {name}: {text}")
    return "\n".join(lines)


def markdown(machine, results, args) -> str:
    if args.precision == "int8":
        return markdown_int8(machine, results, args)
    lines = markdown_machine(machine)
    lines.append(f"Input {args.resolution}x{args.resolution}, batch 1, float32; "
                 f"{args.warmup} warm-up + {args.runs} interleaved runs per engine; "
                 "median (p10–p90) in ms; ratio = mnv3 median / peer median "
                 "(< 1: mnv3 faster); load avg = the machine's 1-minute load average "
                 "before and after the measurement.")
    lines.append("")
    peers = [n for n in ENGINE_ORDER if n != "mnv3"]
    present = [n for n in ENGINE_ORDER if any(n in r["engines"] for r in results)]
    header = ["model", "threads"] + [n for n in present]
    header += [f"mnv3 / {n}" for n in peers if n in present]
    header.append("load avg")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for r in results:
        row = [f"{r['arch']}", str(r["threads"])]
        for n in present:
            s = r["engines"].get(n)
            row.append("—" if s is None else
                       f"{s['median_ms']:.2f} ({s['p10_ms']:.2f}–{s['p90_ms']:.2f})")
        for n in peers:
            if n in present:
                row.append(fmt(r["mnv3_ratio"].get(n)))
        la = r["loadavg_1min"]
        row.append(f"{fmt(la[0], 1)}→{fmt(la[1], 1)}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Correctness, max |Δ| of the logits against PyTorch on the same input:")
    lines.append("")
    lines.append("| model | " + " | ".join(present) + " | max \\|logit\\| |")
    lines.append("|---|" + "|".join(["---:"] * (len(present) + 1)) + "|")
    seen = set()
    for r in results:
        if r["arch"] in seen:
            continue
        seen.add(r["arch"])
        row = [r["arch"]]
        for n in present:
            s = r["engines"].get(n)
            err = None if s is None else s["max_abs_diff_vs_torch"]
            row.append("n/a" if err is None else f"{err:.1e}")
        row.append(f"{r['torch_logits_max_abs']:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=["large", "small", "both"], default="both")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=50, help="measured runs per engine")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured runs per engine")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--weights", help="torchvision state dict (.pth) to use instead of "
                    "seeded synthetic weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=["fp32", "half", "int8"], default="fp32",
                    help="int8: the int8 and uint8 rows, with the fp32 engines in the same "
                    "run for ratios (224x224 only); half: the float16-weight and relaxed-"
                    "precision rows (mnv3-fp16w, mnv3-relaxed, ncnn-fp16) beside fp32")
    ap.add_argument("--engines", nargs="+", choices=INT8_ENGINE_ORDER + HALF_ENGINES,
                    help=f"a subset (fp32 default: {' '.join(ENGINE_ORDER)}; int8 default: "
                    f"{' '.join(INT8_DEFAULT_ENGINES)})")
    ap.add_argument("--settle", type=int, default=1,
                    help="untimed runs at the start of each engine's slot (default 1)")
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="idle time before each timed run (lets other engines' worker "
                    "threads stop spinning)")
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    if any(t < 1 for t in args.threads):
        ap.error("--threads values must be >= 1")
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")
    if args.precision == "int8" and args.resolution != 224:
        ap.error("--precision int8 measures 224x224, the size of the quantized TFLite models")
    if args.engines is None:
        args.engines = (INT8_DEFAULT_ENGINES if args.precision == "int8" else
                        ENGINE_ORDER + HALF_ENGINES if args.precision == "half" else ENGINE_ORDER)
    elif args.precision != "int8" and set(args.engines) - set(ENGINE_ORDER + HALF_ENGINES):
        ap.error("int8 engines need --precision int8")

    try:
        import torch
    except ImportError as e:
        log(f"torch is required to build the shared weights and reference ({e})")
        return 2
    torch.set_num_threads(1)
    try:
        import_torchvision()
    except Exception as e:
        log(f"torchvision model definitions could not be imported: {type(e).__name__}: {e}")
        return 2

    lib = load_mnv3()

    machine = machine_info(lib)
    log(f"machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, "
        f"flags {' '.join(machine['flags'])}")
    results: List[dict] = []
    archs = ["large", "small"] if args.arch == "both" else [args.arch]
    for arch in archs:
        bench_arch(arch, args, lib, results)

    if args.markdown:
        print()
        print(markdown(machine, results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "settings": {k: v for k, v in vars(args).items()
                                                         if k not in ("json", "markdown")},
                       "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
