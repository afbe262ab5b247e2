#!/usr/bin/env python3
"""Side-by-side latency of mnv3 against ONNX Runtime, LiteRT (XNNPACK) and ncnn.

All engines run the same MobileNetV3 architecture (torchvision's definition) with the same
weights, on the same input array, with the same thread count, in one process. Each
measured iteration runs every engine once, in an order rotated every iteration, so that
load from other tenants of a shared machine affects all engines alike.

    python3 tools/bench_peers.py [--arch large|small|both] [--threads 1 2] [--runs N]
                                 [--warmup N] [--resolution 224] [--json OUT] [--markdown]

Converted models are cached under build/peers/. Engines whose Python package is missing
(or whose conversion fails) are skipped with a message. mnv3 is called through ctypes on
build/libmnv3.so (`make lib`); it loads the same weights from a .mnv3 file written by
tools/export_torchvision.py when both that exporter and mnv3_model_load_file are
available, and otherwise falls back to the built-in architecture with pseudo-random
weights (timing only; no correctness check is possible then).

See docs/benchmarks.md for the method.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
PEERS_DIR = os.path.join(ROOT, "build", "peers")
CACHE_VERSION = "2"  # bump when a conversion changes
ENGINE_ORDER = ["mnv3", "onnxruntime", "litert-xnnpack", "ncnn"]

if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)


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
        from _torchvision_compat import import_torchvision as compat_import
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
# mnv3 through ctypes
# ------------------------------------------------------------------------------------

class _Error(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * 256)]


class _Config(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("width", ctypes.c_uint32), ("layout", ctypes.c_int),
                ("threads", ctypes.c_uint32), ("isa", ctypes.c_int), ("profile", ctypes.c_int)]


MNV3_ARCH = {"large": 1, "small": 2}
MNV3_FLAVOR_TORCHVISION = 1


def display_path(path: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return os.path.basename(path) if rel.startswith("..") else rel


def sources_hash(names: List[str]) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    for n in names:
        try:
            with open(os.path.join(TOOLS, n), "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"-")
    return h.hexdigest()[:8]


def warn_if_stale(lib_path: str) -> None:
    """The library is built by `make`; say so when the C sources are newer."""
    try:
        built = os.path.getmtime(lib_path)
    except OSError:
        return
    newest, newest_name = 0.0, ""
    for d in ("csrc", os.path.join("csrc", "kernels"), "include"):
        full = os.path.join(ROOT, d)
        if not os.path.isdir(full):
            continue
        for n in os.listdir(full):
            if n.endswith((".c", ".h")):
                t = os.path.getmtime(os.path.join(full, n))
                if t > newest:
                    newest, newest_name = t, os.path.join(d, n)
    if newest > built:
        log(f"warning: {display_path(lib_path)} is older than {newest_name}; "
            "run `make lib` to benchmark the current sources")


def find_libmnv3() -> Optional[str]:
    env = os.environ.get("MNV3_LIB")
    candidates = [env] if env else []
    candidates += [os.path.join(ROOT, "build", "libmnv3.so"),
                   os.path.join(ROOT, "build", "libmnv3.dylib")]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    return None


class Mnv3:
    def __init__(self, path: str):
        self.path = path
        lib = ctypes.CDLL(path)
        self.lib = lib
        P = ctypes.c_void_p
        lib.mnv3_version_string.restype = ctypes.c_char_p
        lib.mnv3_isa_name.restype = ctypes.c_char_p
        lib.mnv3_isa_name.argtypes = [ctypes.c_int]
        lib.mnv3_isa_best.restype = ctypes.c_int
        lib.mnv3_model_create_builtin.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_double,
                                                  ctypes.c_uint32, ctypes.c_uint64,
                                                  ctypes.POINTER(P), ctypes.POINTER(_Error)]
        lib.mnv3_config_init.argtypes = [ctypes.POINTER(_Config), P]
        lib.mnv3_context_create.argtypes = [P, ctypes.POINTER(_Config), P, ctypes.c_size_t,
                                            ctypes.POINTER(P), ctypes.POINTER(_Error)]
        lib.mnv3_run.argtypes = [P, P, ctypes.c_size_t, P, ctypes.c_size_t, P, ctypes.c_size_t]
        lib.mnv3_context_isa.argtypes = [P]
        lib.mnv3_context_isa.restype = ctypes.c_int
        lib.mnv3_context_threads.argtypes = [P]
        lib.mnv3_context_threads.restype = ctypes.c_uint32
        lib.mnv3_context_free.argtypes = [P]
        lib.mnv3_model_free.argtypes = [P]
        self.can_load = hasattr(lib, "mnv3_model_load_file")
        if self.can_load:
            lib.mnv3_model_load_file.argtypes = [ctypes.c_char_p, ctypes.c_uint32,
                                                 ctypes.POINTER(P), ctypes.POINTER(_Error)]

    def version(self) -> str:
        return self.lib.mnv3_version_string().decode()

    def best_isa(self) -> str:
        return self.lib.mnv3_isa_name(self.lib.mnv3_isa_best()).decode()

    def _check(self, status, err, what):
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {err.message.decode(errors='replace')}")

    def model_from_file(self, path: str):
        m, err = ctypes.c_void_p(), _Error()
        self._check(self.lib.mnv3_model_load_file(path.encode(), 0, ctypes.byref(m),
                                                  ctypes.byref(err)), err, "mnv3_model_load_file")
        return m

    def model_builtin(self, arch: str, seed: int = 1):
        m, err = ctypes.c_void_p(), _Error()
        self._check(self.lib.mnv3_model_create_builtin(MNV3_ARCH[arch], MNV3_FLAVOR_TORCHVISION,
                                                       1.0, 1000, seed, ctypes.byref(m),
                                                       ctypes.byref(err)),
                    err, "mnv3_model_create_builtin")
        return m

    def context(self, model, resolution: int, threads: int):
        cfg = _Config()
        self.lib.mnv3_config_init(ctypes.byref(cfg), model)
        cfg.batch, cfg.height, cfg.width = 1, resolution, resolution
        cfg.layout = 0  # NCHW, as torch
        cfg.threads = threads
        cfg.isa = 0  # AUTO: the best kernels this CPU supports
        ctx, err = ctypes.c_void_p(), _Error()
        self._check(self.lib.mnv3_context_create(model, ctypes.byref(cfg), None, 0,
                                                 ctypes.byref(ctx), ctypes.byref(err)),
                    err, "mnv3_context_create")
        return ctx


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


def prepare_onnxruntime(paths, model, x, threads):
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise Skip(f"onnxruntime not installed ({e}); pip install onnxruntime")
    if not os.path.exists(paths["onnx"]):
        try:
            importlib.import_module("onnx")
        except ImportError as e:
            raise Skip(f"onnx not installed ({e}); pip install onnx")
        export_onnx(model, x, paths["onnx"] + ".tmp")
        os.replace(paths["onnx"] + ".tmp", paths["onnx"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(paths["onnx"], so, providers=["CPUExecutionProvider"])
    out = np.empty(sess.get_outputs()[0].shape, dtype=np.float32)
    binding = sess.io_binding()
    binding.bind_cpu_input("input", x)
    binding.bind_output("logits", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
    opts = ort.RunOptions()

    def run():
        sess.run_with_iobinding(binding, opts)
    return Engine("onnxruntime", run, lambda: out.copy(),
                  f"onnxruntime {ort.__version__}, CPUExecutionProvider, "
                  f"intra_op={threads}, inter_op=1, sequential, ORT_ENABLE_ALL")


def prepare_litert(paths, model, x, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise Skip(f"ai-edge-litert not installed ({e}); pip install ai-edge-litert")
    if not os.path.exists(paths["tflite"]):
        try:
            from peers_tflite_builder import build_tflite
        except ImportError as e:
            raise Skip(f"cannot build the .tflite model ({e}); pip install tflite flatbuffers")
        data = build_tflite(model, x.shape[2])
        with open(paths["tflite"] + ".tmp", "wb") as f:
            f.write(data)
        os.replace(paths["tflite"] + ".tmp", paths["tflite"])
    with captured_fds():
        interp = Interpreter(model_path=paths["tflite"], num_threads=threads)
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
    if not xnnpack:
        log("litert: the XNNPACK delegate does not cover the whole graph "
            f"({len(delegates)} delegated partition(s)); LiteRT runs some builtin kernels")
    interp.set_tensor(inp, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    invoke = interp.invoke

    ver = module_version("ai_edge_litert", "ai-edge-litert")
    return Engine("litert-xnnpack", invoke, lambda: interp.get_tensor(outp).copy(),
                  f"ai-edge-litert {ver}, Interpreter(num_threads={threads}), "
                  f"XNNPACK delegate {'runs the whole graph' if xnnpack else 'NOT covering the graph'}, "
                  "NHWC input")


def prepare_ncnn(paths, model, x, threads):
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
    # float32 throughout, for a like-for-like comparison.
    opt.use_fp16_packed = False
    opt.use_fp16_storage = False
    opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    if hasattr(opt, "use_bf16_packed"):
        opt.use_bf16_packed = False
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
    return Engine("ncnn", run, output,
                  f"ncnn {ncnn.__version__} (model by pnnx {module_version('pnnx') or '?'}), "
                  f"num_threads={threads}, fp32 (fp16/bf16 storage and arithmetic off), "
                  f"openmp_blocktime={opt.openmp_blocktime}")


def prepare_mnv3(paths, model, x, threads, lib: Optional[Mnv3], arch, weights_path):
    if lib is None:
        raise Skip("build/libmnv3.so not found; run `make lib` (or set MNV3_LIB)")
    same = False
    why = ""
    exporter = os.path.join(TOOLS, "export_torchvision.py")
    if not lib.can_load:
        why = "this libmnv3 has no mnv3_model_load_file"
    elif not os.path.exists(exporter):
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
        m = lib.model_from_file(paths["mnv3"])
        source = "same weights (.mnv3 from tools/export_torchvision.py)"
    else:
        log(f"mnv3: {why}; timing the built-in {arch} architecture with pseudo-random "
            "weights (no correctness check)")
        m = lib.model_builtin(arch)
        source = "built-in architecture, pseudo-random weights"
    ctx = lib.context(m, x.shape[2], threads)
    out = np.zeros((1, 1000), dtype=np.float32)
    run_fn = lib.lib.mnv3_run
    xp, xn = x.ctypes.data, x.size
    op, on = out.ctypes.data, out.size

    def run():
        st = run_fn(ctx, xp, xn, op, on, None, 0)
        if st != 0:
            raise RuntimeError(f"mnv3_run failed with status {st}")

    isa = lib.lib.mnv3_isa_name(lib.lib.mnv3_context_isa(ctx)).decode()
    nthr = lib.lib.mnv3_context_threads(ctx)

    def close():
        lib.lib.mnv3_context_free(ctx)
        lib.lib.mnv3_model_free(m)
    return Engine("mnv3", run, lambda: out.copy(),
                  f"mnv3 {lib.version()} (ctypes, {display_path(lib.path)}), "
                  f"isa={isa}, threads={nthr}, NCHW input; {source}",
                  close=close, same_weights=same)


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

def machine_info(lib: Optional[Mnv3]) -> Dict[str, object]:
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
                                 "avx512_fp16", "asimd", "neon"] if f in flags]
    info["logical_cpus"] = os.cpu_count()
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cpus"] = os.cpu_count()
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    versions = {}
    if lib is not None:
        versions["mnv3"] = f"{lib.version()} (best isa: {lib.best_isa()})"
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
            ["export_torchvision.py", "mnv3arch.py", "mnv3file.py"]) + ".mnv3"),
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
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((1, 3, args.resolution, args.resolution)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()

    for threads in args.threads:
        engines: List[Engine] = []
        preparers = {
            "mnv3": lambda: prepare_mnv3(paths, model, x, threads, lib, arch, weights_path),
            "onnxruntime": lambda: prepare_onnxruntime(paths, model, x, threads),
            "litert-xnnpack": lambda: prepare_litert(paths, model, x, threads),
            "ncnn": lambda: prepare_ncnn(paths, model, x, threads),
        }
        for name in ENGINE_ORDER:
            if name not in args.engines:
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
                out = np.asarray(e.output(), dtype=np.float32).reshape(ref.shape)
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
        if "mnv3" in stats:
            for name, s in stats.items():
                if name != "mnv3":
                    ratios[name] = stats["mnv3"]["median_ms"] / s["median_ms"]
        results.append({"arch": arch, "threads": threads, "resolution": args.resolution,
                        "engines": stats, "mnv3_ratio": ratios,
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
    print(f"{'engine':<16}{'median ms':>10}{'p10':>9}{'p90':>9}{'mnv3/peer':>11}"
          f"{'max|Δ| vs torch':>18}")
    for name, s in r["engines"].items():
        ratio = r["mnv3_ratio"].get(name)
        err = s["max_abs_diff_vs_torch"]
        print(f"{name:<16}{s['median_ms']:>10.2f}{s['p10_ms']:>9.2f}{s['p90_ms']:>9.2f}"
              f"{fmt(ratio):>11}{('%.2e' % err) if err is not None else 'n/a':>18}")
    la = r["loadavg_1min"]
    print(f"(torch logits max |value| = {r['torch_logits_max_abs']:.2f}; "
          "mnv3/peer < 1 means mnv3 is faster; 1-min load average "
          f"{fmt(la[0])} -> {fmt(la[1])} over {r['wall_s']:.0f} s)")
    for name, s in r["engines"].items():
        print(f"  {name}: {s['detail']}")
    sys.stdout.flush()


def markdown(machine, results, args) -> str:
    lines = []
    flags = ", ".join(machine["flags"]) or "none of avx2/fma/avx512f"
    lines.append(f"Machine: {machine['cpu']} ({machine['arch']}, {flags}), "
                 f"{machine['usable_cpus']} usable of {machine['logical_cpus']} logical CPUs, "
                 f"{machine['os']}, Python {machine['python']}.")
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
                 + ".")
    lines.append("")
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
    ap.add_argument("--engines", nargs="+", default=ENGINE_ORDER, choices=ENGINE_ORDER)
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

    lib = None
    path = find_libmnv3()
    if path:
        try:
            lib = Mnv3(path)
            warn_if_stale(path)
        except OSError as e:
            log(f"could not load {path}: {e}")
    else:
        log("build/libmnv3.so not found: run `make lib`; benchmarking the peers only")

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
