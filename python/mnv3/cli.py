"""``python -m mnv3``: the command-line tool of the package.

Subcommands, as the Swift ``mnv3`` tool's: ``info``, ``classify``, ``run``, ``validate``
and ``bench``. ``MODEL`` is a ``.mnv3`` file, or ``builtin:large`` /
``builtin:small[:WIDTH][:int8]`` for a built-in architecture with seeded weights. Errors
are printed on standard error with exit status 1 (2 for usage errors).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import BadArrayError, BadMetadataError, Error, FileIOError, ImageTooLargeError, \
    InvalidArgumentError, ShapeError, UnsupportedError
from .image import DEFAULT_MAX_PIXELS
from .model import PRECISION_ALIASES, Model
from .session import Session, available_isas

PRECISION_CHOICES = ("fp32", "fp16-weights", "relaxed", "int8")
_PRECISION_NAMES = {"fp32": "fp32", "float32": "fp32", "f32": "fp32", "float": "fp32",
                    "fp16-weights": "fp16-weights", "fp16": "fp16-weights",
                    "float16": "fp16-weights", "f16": "fp16-weights", "relaxed": "relaxed",
                    "int8": "int8", "i8": "int8", "q8": "int8"}


def load_model(spec: str, precision: Optional[str] = None) -> Model:
    """A model from a path or a ``builtin:ARCH[:WIDTH][:PRECISION]`` specification;
    ``precision`` (``fp32`` or ``int8``) chooses a built-in's precision."""
    if spec.startswith("builtin:"):
        usage = (f"{spec}: expected builtin:ARCH[:WIDTH][:PRECISION], ARCH large or small, "
                 "WIDTH in (0, 4], PRECISION float32 or int8")
        parts = spec[len("builtin:"):].split(":")
        if not parts or parts[0] not in ("large", "small") or len(parts) > 3:
            raise InvalidArgumentError(usage)
        width: Optional[float] = None
        named: Optional[str] = None
        for part in parts[1:]:
            try:
                w = float(part)
            except ValueError:
                w = None  # type: ignore[assignment]
            if width is None and named is None and w is not None:
                if not 0 < w <= 4:
                    raise InvalidArgumentError(f"{spec}: width must be a number in (0, 4]")
                width = w
            elif named is None and PRECISION_ALIASES.get(part.lower(), part.lower()) in (
                    "fp32", "int8"):
                named = PRECISION_ALIASES.get(part.lower(), part.lower())
            else:
                raise InvalidArgumentError(usage)
        if named and precision and named != precision:
            raise InvalidArgumentError(f"{spec} is {named}, --precision says {precision}")
        return Model.builtin(arch=parts[0], width=width or 1.0,
                             precision=named or precision or "fp32")
    if precision is not None:
        raise InvalidArgumentError("--precision chooses a built-in network's precision; "
                                   f"{spec} has its own")
    return Model(spec)


def apply_precision(choice: Optional[str], model: Model) -> Tuple[Model, str]:
    """The model and session precision a ``--precision`` asks for."""
    if choice is None:
        return model, "exact"
    if choice == "fp32":
        return (model.converted("float32") if model.weight_type == "float16" else model,
                "exact")
    if choice == "fp16-weights":
        return (model.converted("float16") if model.weight_type == "float32" else model,
                "exact")
    if choice == "relaxed":
        return model, "relaxed"
    if not model.quantized:
        raise UnsupportedError("--precision int8 needs a quantized (int8) model")
    return model, "exact"


def format_bytes(n: int) -> str:
    v, unit = float(n), 0
    units = ["B", "KiB", "MiB", "GiB"]
    while v >= 1024 and unit < len(units) - 1:
        v /= 1024
        unit += 1
    return f"{n} B" if unit == 0 else f"{v:.2f} {units[unit]} ({n} B)"


def format_count(n: float) -> str:
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= bound:
            return f"{n / bound:.3f} {suffix}"
    return f"{int(n)}"


# ------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------

def cmd_info(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    p = model.preprocess
    size: Tuple[int, int] = ((args.resolution, args.resolution) if args.resolution
                             else (p.size.height, p.size.width))
    macs = model.macs(size)
    plan = model.arena_plan(threads=args.threads, batch=args.batch, height=size[0],
                            width=size[1])
    s = f"{size[0]}x{size[1]}"
    print(f"model:          {args.model}")
    print(f"architecture:   MobileNetV3-{model.arch} ({model.flavor} flavor)")
    print(f"blocks:         {model.block_count} inverted-residual blocks, "
          f"{model.layer_count} layers")
    print(f"classes:        {model.classes}")
    print(f"feature dim:    {model.feature_dimension}")
    print(f"parameters:     {model.parameters} ({format_count(model.parameters)})")
    print(f"precision:      {model.precision}")
    if model.input_quantization and model.logits_quantization:
        print(f"quantization:   input {model.input_quantization}")
        print(f"                logits {model.logits_quantization}")
        print(f"stored values:  {model.stored_values} int8 weights and int32 biases "
              f"({format_bytes(model.stored_bytes)})")
    else:
        print(f"stored values:  {model.stored_values} {model.weight_type} weights and float32 "
              f"biases ({format_bytes(model.stored_bytes)})")
    print(f"MACs at {s}:  {macs} ({format_count(macs)})")
    print(f"model memory ({plan.isa} kernels; shared by every session on the model):")
    in_place = " (read in place)" if plan.model_weights == 0 else ""
    print(f"  weights:               {format_bytes(plan.model_weights)}{in_place}")
    print(f"  packed weights:        {format_bytes(plan.packed_weights)}")
    plural = "" if args.threads == 1 else "s"
    print(f"session arena (batch {args.batch}, {args.threads} thread{plural}), per session:")
    print(f"  total:                 {format_bytes(plan.total)}")
    print(f"  activations:           {format_bytes(plan.activations)}")
    print(f"  activation lower bound: {format_bytes(plan.activation_lower_bound)}")
    print(f"  scratch:               {format_bytes(plan.scratch)}")
    print(f"  context:               {format_bytes(plan.context)}")
    print(f"preprocessing:  {p.size} {p.channel_order.upper()}, framework layout {p.layout}")
    print(f"  input = (pixel * {p.scale:g} - mean) / std, mean {list(p.mean)}, "
          f"std {list(p.std)}")
    if model.has_labels:
        sample = ", ".join(f'"{label}"' for label in model.labels[:3])
        more = ", ..." if len(model.labels) > 3 else ""
        print(f"labels:         {len(model.labels)} ({sample}{more})")
    else:
        print("labels:         none")
    if args.layers:
        print()
        print(f"{'#':>4}  {'name':<22}{'kind':<16}{'in':<16}{'out':<16}{'k/s':<6}{'act':<13}"
              f"{'MACs':>12}")
        for layer in model.layers(size):
            act = layer.activation + ("+res" if layer.residual else "")
            print(f"{layer.index:>4}  {layer.name:<22}{layer.kind:<16}"
                  f"{f'{layer.in_channels}x{layer.input_size}':<16}"
                  f"{f'{layer.out_channels}x{layer.output_size}':<16}"
                  f"{f'{layer.kernel}/{layer.stride}':<6}{act:<13}{layer.macs:>12}")
    return 0


# ------------------------------------------------------------------------------------------
# classify
# ------------------------------------------------------------------------------------------

def cmd_classify(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    session = Session(model, threads=args.threads)
    failed = 0
    for path in args.images:
        try:
            info, result = session._classify(path, args.top, args.max_pixels)
        except Error as e:
            hint = " (--max-pixels raises the limit)" if isinstance(e, ImageTooLargeError) else ""
            print(f"Error: {e}{hint}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path} ({info.width}x{info.height} {info.format}):")
        for c in result:
            print(f"  {c.probability:.4f}  {c.index:>5}  {c.label}")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------

def _load_npy(path: str, what: str) -> np.ndarray:
    if os.path.isdir(path):
        raise FileIOError(f"{path}: is a directory, not a .npy file")
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileIOError(f"{path}: no such {what} file") from None
    except OSError as e:
        raise FileIOError(f"{path}: cannot read {what} file: {e}") from None
    except ValueError as e:
        raise BadArrayError(f"{path}: not a .npy array: {e}") from None


def cmd_run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    x = _load_npy(args.input, "input")
    layout = args.layout
    if x.dtype == np.uint8:
        if x.ndim != 4 or x.shape[3] != 3 or min(x.shape) < 1:
            raise ShapeError(f"{args.input}: uint8 input must be [N,H,W,3] RGB pixels, "
                             f"got {list(x.shape)}")
        size = model.input_size
        layout = "nchw"
        session = Session(model, threads=args.threads, isa=args.isa, layout=layout,
                          height=size.height, width=size.width)
        batch = np.stack([session.preprocess(np.ascontiguousarray(img)) for img in x])
    elif x.dtype == np.float32:
        if x.ndim != 4:
            raise ShapeError(f"{args.input}: float32 input must have 4 dimensions, "
                             f"got {list(x.shape)}")
        channels = x.shape[1] if layout == "nchw" else x.shape[3]
        if channels != 3:
            hint = (" (did you mean --layout nhwc?)" if layout == "nchw" and x.shape[3] == 3
                    else "")
            raise ShapeError(f"{args.input}: a {layout} input needs 3 channels, shape is "
                             f"{list(x.shape)}{hint}")
        h, w = (x.shape[2], x.shape[3]) if layout == "nchw" else (x.shape[1], x.shape[2])
        session = Session(model, threads=args.threads, isa=args.isa, layout=layout,
                          height=h, width=w)
        batch = x
    else:
        raise BadArrayError(f"{args.input}: unsupported element type {x.dtype} "
                            "(float32 or uint8)")
    n = batch.shape[0]
    logits = np.empty((n, model.classes), dtype=np.float32)
    features = np.empty((n, model.feature_dimension), dtype=np.float32)
    for i in range(n):
        logits[i:i + 1], features[i:i + 1] = session.predict(batch[i:i + 1])
    np.save(args.output, logits)
    if args.features:
        np.save(args.features, features)
    plural = "" if session.threads == 1 else "s"
    print(f"wrote {args.output}: float32 [{n}, {model.classes}] ({session.isa} kernels, "
          f"{session.threads} thread{plural})", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------
# validate
# ------------------------------------------------------------------------------------------

def _compare(got: np.ndarray, ref: np.ndarray) -> Tuple[float, float, float]:
    """Max absolute error, max relative error (relative to max(|ref|, 1e-3 max|ref|)) and
    max |ref|."""
    got = got.astype(np.float64).ravel()
    ref = ref.astype(np.float64).ravel()
    max_ref = float(np.max(np.abs(ref))) if ref.size else 0.0
    if got.size != ref.size:
        return float("inf"), float("inf"), max_ref
    d = np.abs(got - ref)
    floor = max(1e-3 * max_ref, float(np.finfo(np.float32).tiny))
    rel = d / np.maximum(np.abs(ref), floor)
    bad = np.isnan(d)
    max_abs = float("inf") if bad.any() else float(d.max(initial=0.0))
    max_rel = float("inf") if bad.any() else float(rel.max(initial=0.0))
    return max_abs, max_rel, max_ref


def cmd_validate(args: argparse.Namespace) -> int:
    golden = args.golden
    if not os.path.isdir(golden):
        raise FileIOError(f"{golden}: no such golden directory")
    model = load_model(args.model or os.path.join(golden, "model.mnv3"))
    meta: Dict[str, Any] = {}
    meta_path = os.path.join(golden, "meta.json")
    if os.path.exists(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = None  # type: ignore[assignment]
        if not isinstance(meta, dict):
            raise BadMetadataError(f"{meta_path}: not a JSON object")
    x = _load_npy(os.path.join(golden, "input.npy"), "input")
    ref = _load_npy(os.path.join(golden, "logits.npy"), "logits")
    features_path = os.path.join(golden, "features.npy")
    ref_features = _load_npy(features_path, "features") if os.path.exists(features_path) else None
    if x.dtype != np.float32 or x.ndim != 4:
        raise ShapeError(f"{golden}/input.npy: expected float32 [N,3,H,W] or [N,H,W,3], got "
                         f"{x.dtype} {list(x.shape)}")
    layout = str(meta.get("layout", "")).lower()
    if layout not in ("nchw", "nhwc"):
        layout = "nchw" if x.shape[1] == 3 else "nhwc"
    n = x.shape[0]
    h, w = (x.shape[2], x.shape[3]) if layout == "nchw" else (x.shape[1], x.shape[2])
    if ref.dtype != np.float32 or ref.shape != (n, model.classes):
        raise ShapeError(f"{golden}/logits.npy: expected float32 [{n}, {model.classes}], got "
                         f"{ref.dtype} {list(ref.shape)}")
    session = Session(model, batch=n, height=h, width=w, layout=layout, threads=args.threads,
                      isa=args.isa)
    logits, features = session.predict(x)
    base = float(meta.get("tolerance", 1e-4))
    results: List[Dict[str, Any]] = []
    pairs = [("logits", logits, ref)]
    if ref_features is not None:
        if ref_features.dtype != np.float32 or ref_features.shape != (n, model.feature_dimension):
            raise ShapeError(f"{golden}/features.npy: expected float32 [{n}, "
                             f"{model.feature_dimension}], got {ref_features.dtype} "
                             f"{list(ref_features.shape)}")
        pairs.append(("features", features, ref_features))
    for name, got, want in pairs:
        max_abs, max_rel, max_ref = _compare(got, want)
        tol = base * max(1.0, max_ref)
        results.append({"name": name, "maxAbs": max_abs, "maxRel": max_rel, "tolerance": tol,
                        "pass": max_abs <= tol})
    agree = int(np.sum(np.argmax(logits, axis=1) == np.argmax(ref, axis=1)))
    passed = all(r["pass"] for r in results) and agree == n
    if args.json:
        print(json.dumps({"golden": golden, "precision": model.precision, "isa": session.isa,
                          "batch": n, "top1Agree": agree, "results": results, "pass": passed},
                         indent=2, sort_keys=True))
    else:
        print(f"golden: {golden} (batch {n}, {h}x{w}, {layout}, {model.precision} model, "
              f"{session.isa} kernels)")
        for r in results:
            print(f"{r['name'] + ':':<10} max abs error {r['maxAbs']:.3g}, max rel error "
                  f"{r['maxRel']:.3g} (tolerance {r['tolerance']:.3g})  "
                  f"{'ok' if r['pass'] else 'FAIL'}")
        print(f"top-1 agreement: {agree}/{n}  {'ok' if agree == n else 'FAIL'}")
        print("validation passed" if passed else "validation FAILED")
    if not passed and args.json:
        print("validation failed", file=sys.stderr)
    return 0 if passed else 1


# ------------------------------------------------------------------------------------------
# bench
# ------------------------------------------------------------------------------------------

def synthetic_input(count: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random floats in [-1, 1): the ``mnv3 bench`` input (xorshift)."""
    out = np.empty(count, dtype=np.float32)
    state = (seed * 0x9E3779B97F4A7C15 | 1) & 0xFFFFFFFFFFFFFFFF
    mask = 0xFFFFFFFFFFFFFFFF
    values = []
    for _ in range(count):
        state ^= (state << 13) & mask
        state ^= state >> 7
        state ^= (state << 17) & mask
        values.append(state >> 40)
    out[:] = np.asarray(values, dtype=np.float64) / float(1 << 23) - 1
    return out


def percentile_90(sorted_ms: List[float]) -> float:
    import math
    i = min(len(sorted_ms) - 1, max(0, math.ceil(0.9 * len(sorted_ms)) - 1))
    return sorted_ms[i]


def cmd_bench(args: argparse.Namespace) -> int:
    if args.model and args.width != 1.0:
        raise InvalidArgumentError("--width applies to --arch, not --model")
    if args.model:
        spec = args.model
    else:
        spec = f"builtin:{args.arch}" + (f":{args.width:g}" if args.width != 1.0 else "")
        if args.precision == "int8":
            spec += ":int8"
    model, mode = apply_precision(args.precision, load_model(spec))
    size: Tuple[int, int] = ((args.resolution, args.resolution) if args.resolution
                             else (model.input_size.height, model.input_size.width))
    macs = model.macs(size)
    session = Session(model, threads=args.threads, isa=args.isa, precision=mode,
                      height=size[0], width=size[1])
    x = synthetic_input(int(np.prod(session.input_shape)), 1).reshape(session.input_shape)
    out = np.empty(session.output_shape, dtype=np.float32)
    progress = not args.json and sys.stderr.isatty()
    for i in range(args.warmup):
        if progress:
            print(f"\r\x1b[Kwarm-up {i + 1}/{args.warmup}", end="", file=sys.stderr)
        session.run(x, out=out)
    times = []
    for i in range(args.runs):
        t0 = time.perf_counter_ns()
        session.run(x, out=out)
        t1 = time.perf_counter_ns()
        times.append((t1 - t0) / 1e6)
        if progress:
            print(f"\r\x1b[Krun {i + 1}/{args.runs}: {times[-1]:.2f} ms", end="", file=sys.stderr)
    if progress:
        print("\r\x1b[K", end="", file=sys.stderr)
    times.sort()
    median = statistics.median(times)
    ops = "GOP/s" if model.quantized else "GFLOP/s"
    report = {
        "model": spec, "arch": model.arch, "flavor": model.flavor, "precision": model.precision,
        "resolution": size[0], "isa": session.isa, "weights": model.weight_type,
        "arithmetic": session.arithmetic, "int8Kernels": session.int8_kernels,
        "macs": macs, "parameters": model.parameters, "arenaBytes": session.arena_bytes,
        "runs": args.runs, "warmup": args.warmup, "threads": session.threads,
        "minMs": times[0], "medianMs": median, "p90Ms": percentile_90(times),
        "meanMs": statistics.fmean(times), "imagesPerSecond": 1000 / median,
        "gflops": 2 * macs / (median * 1e6),
    }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(f"model: {spec} (MobileNetV3-{model.arch}, {model.flavor}, {model.precision}), "
          f"{size[0]}x{size[1]}, {format_count(macs)}MACs, "
          f"{format_count(model.parameters)} parameters")
    variant = f" (int8: {session.int8_kernels})" if session.int8_kernels else ""
    print(f"kernels: {session.isa}{variant}, {model.weight_type} weights, "
          f"{session.arithmetic} arithmetic, arena {format_bytes(session.arena_bytes)}, "
          f"{args.warmup} warm-up + {args.runs} timed runs of Session.run")
    print()
    print(f"{'threads':>8}{'min ms':>10}{'median ms':>11}{'p90 ms':>10}{'img/s':>10}{ops:>10}")
    print(f"{session.threads:>8}{report['minMs']:>10.2f}{median:>11.2f}{report['p90Ms']:>10.2f}"
          f"{report['imagesPerSecond']:>10.1f}{report['gflops']:>10.2f}")
    return 0


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------

def _precision(value: str) -> str:
    name = _PRECISION_NAMES.get(value.lower())
    if name is None:
        raise argparse.ArgumentTypeError(
            f"invalid precision {value!r} (choose from {', '.join(PRECISION_CHOICES)})")
    return name


def _isa(value: str) -> str:
    if value.lower() not in ("auto", "scalar", "avx2", "avx512", "neon"):
        raise argparse.ArgumentTypeError(
            f"unknown kernel set {value!r} (auto, scalar, avx2, avx512, neon)")
    return value.lower()


def _positive(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {v})")
    return v


def _count(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative (got {v})")
    return v


MODEL_HELP = "a .mnv3 model file, or builtin:large|small[:WIDTH][:int8]"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m mnv3",
        description="MobileNetV3 inference: inspect a model, classify images, run .npy "
                    "batches, validate against goldens and benchmark.",
        epilog="MODEL is a .mnv3 file or builtin:large / builtin:small[:WIDTH][:int8]. "
               f"Kernel sets on this machine: {', '.join(_available_or_unknown())}.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    raw = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("info", formatter_class=raw,
                       help="architecture, size, cost, memory plan and preprocessing",
                       description="Show a model's architecture, size, cost, memory plan and "
                                   "preprocessing.\n\nExamples:\n"
                                   "  python -m mnv3 info model.mnv3\n"
                                   "  python -m mnv3 info builtin:small --layers\n"
                                   "  python -m mnv3 info builtin:large:int8 --resolution 320")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--resolution", type=_positive,
                   help="input size for MACs and the memory plan (default: the model's)")
    p.add_argument("--threads", type=_positive, default=1, help="threads for the memory plan")
    p.add_argument("--batch", type=_positive, default=1, help="batch for the memory plan")
    p.add_argument("--layers", action="store_true", help="also list every layer")
    p.set_defaults(fn=cmd_info)

    p = sub.add_parser("classify", formatter_class=raw,
                       help="classify PNG, JPEG, PPM (P6) or PGM (P5) images",
                       description="Classify images: each is decoded to 8-bit pixels, resized "
                                   "and normalised as the model's metadata says, and the top "
                                   "classes are printed with softmax probabilities.\n\n"
                                   "Examples:\n"
                                   "  python -m mnv3 classify --model small.mnv3 cat.png\n"
                                   "  python -m mnv3 classify --model small.mnv3 --top 3 a.jpg "
                                   "b.ppm")
    p.add_argument("--model", required=True, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top", type=_positive, default=5, help="classes to print per image")
    p.add_argument("--threads", type=_positive, default=1, help="worker threads")
    p.add_argument("--max-pixels", type=_positive, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels than this (default %(default)s)")
    p.set_defaults(fn=cmd_classify)

    p = sub.add_parser("run", formatter_class=raw,
                       help="run a model on a .npy batch and write the logits as .npy",
                       description="Run a model on a .npy batch and write the logits as .npy.\n"
                                   "float32 input is used as is ([N,3,H,W] with --layout nchw, "
                                   "[N,H,W,3] with --layout nhwc, already normalised); uint8 "
                                   "input [N,H,W,3] (RGB pixels) gets the model's "
                                   "preprocessing.\n\nExamples:\n"
                                   "  python -m mnv3 run --model model.mnv3 --input x.npy "
                                   "--output logits.npy\n"
                                   "  python -m mnv3 run --model model.mnv3 --input x.npy "
                                   "--layout nhwc --output y.npy --threads 2")
    p.add_argument("--model", required=True, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input", required=True, help="input .npy (float32 or uint8)")
    p.add_argument("--output", required=True, help="output .npy for the logits")
    p.add_argument("--features", help="optional output .npy for the pooled features")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw",
                   help="layout of a float32 input")
    p.add_argument("--threads", type=_positive, default=1, help="worker threads")
    p.add_argument("--isa", type=_isa, default="auto", help="kernel set (default: auto)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("validate", formatter_class=raw,
                       help="compare a model's outputs with a golden directory",
                       description="Compare a model's outputs with a golden directory "
                                   "(input.npy, logits.npy, optionally features.npy, meta.json "
                                   "and model.mnv3, as mnv3-golden writes them). Exit status 1 "
                                   "when the max absolute error exceeds tolerance * max(1, "
                                   "max|reference|) or a top-1 class differs.\n\nExample:\n"
                                   "  python -m mnv3 validate --golden golden/")
    p.add_argument("--golden", required=True, help="the golden directory")
    p.add_argument("--model", metavar="MODEL", help="default: GOLDEN/model.mnv3")
    p.add_argument("--threads", type=_positive, default=1, help="worker threads")
    p.add_argument("--isa", type=_isa, default="auto", help="kernel set (default: auto)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("bench", formatter_class=raw,
                       help="measure the latency of Session.run",
                       description="Measure the latency of Session.run on a synthetic input: "
                                   "warm-up runs, then timed ones; prints min, median and p90 "
                                   "latency, images per second and GFLOP/s (GOP/s for int8)."
                                   "\n\nExamples:\n"
                                   "  python -m mnv3 bench --arch small --runs 200\n"
                                   "  python -m mnv3 bench --arch large --precision int8 "
                                   "--threads 2\n"
                                   "  python -m mnv3 bench --model small.mnv3 --precision "
                                   "fp16-weights --json")
    p.add_argument("--model", metavar="MODEL", help=MODEL_HELP + " (instead of --arch)")
    p.add_argument("--arch", choices=("large", "small"), default="large",
                   help="built-in architecture when no --model is given")
    p.add_argument("--width", type=float, default=1.0,
                   help="width multiplier of the built-in architecture")
    p.add_argument("--precision", type=_precision, metavar="{" + ",".join(PRECISION_CHOICES) + "}",
                   help="fp32, fp16-weights (float16 weights, float32 arithmetic), relaxed "
                        "(float16 or bf16 products where the CPU has them) or int8")
    p.add_argument("--resolution", type=_positive, help="square input size (default: the model's)")
    p.add_argument("--threads", type=_positive, default=1, help="worker threads")
    p.add_argument("--runs", type=_positive, default=20, help="timed inferences")
    p.add_argument("--warmup", type=_count, default=3, help="untimed warm-up inferences")
    p.add_argument("--isa", type=_isa, default="auto", help="kernel set (default: auto)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(fn=cmd_bench)
    return ap


def _available_or_unknown() -> List[str]:
    try:
        return available_isas()
    except ImportError:
        return ["(the C library is not built)"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``python -m mnv3`` with ``argv`` (default: the process's arguments) and returns
    the exit status."""
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except Error as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `python -m mnv3 info ... | head`
        return 0
