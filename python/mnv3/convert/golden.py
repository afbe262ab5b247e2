#!/usr/bin/env python3
"""Writes a golden directory for any .mnv3 model: the input, the reference framework's
logits and pooled features, and meta.json, for `mnv3 validate` and the C test suite.

    # PyTorch reference (the state dict the .mnv3 was exported from)
    python3 tools/golden.py model.mnv3 --reference torch --weights model.pth \\
        --width-mult 1.0 --batch 2 -o goldens/mymodel
    # TFLite reference (a model imported with tools/import_tflite.py)
    python3 tools/golden.py small.mnv3 --reference tflite --tflite small.tflite \\
        --input images_uint8_nhwc.npy -o goldens/small_tflite
    # no framework: float64 numpy evaluation of the .mnv3 description itself
    python3 tools/golden.py model.mnv3 --reference numpy -o goldens/mymodel

A golden directory holds model.mnv3, input.npy (float32, already normalised; NCHW
[N,3,H,W] or NHWC [N,H,W,3] as meta.json's "layout" says), logits.npy [N,classes],
features.npy [N,C] and meta.json. With a TFLite reference, whose quantized output is a
softmax, reference_probs.npy holds its probabilities and the logits come from the numpy
evaluation; the check is then top-1 and top-5 agreement."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Optional

import numpy as np

from . import modelfile as mnv3file
from . import reference as mnv3ref
from .modelfile import NCHW, Network

ARCH_NAMES = {v: k for k, v in mnv3file.ARCH.items()}
FLAVOR_NAMES = {v: k for k, v in mnv3file.FLAVOR.items()}
DEFAULT_TOLERANCE = 1e-4


def write_golden(out_dir: str, net: Network, x: np.ndarray, layout: int, logits: np.ndarray,
                 features: np.ndarray, model_path: Optional[str] = None,
                 width_mult: Optional[float] = None, reference: str = "pytorch",
                 tolerance: float = DEFAULT_TOLERANCE, extra_meta: Optional[dict] = None,
                 reference_probs: Optional[np.ndarray] = None) -> str:
    """Writes one golden directory. `x` is the normalised float input in `layout`."""
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "model.mnv3")
    if model_path is not None:
        if os.path.abspath(model_path) != os.path.abspath(dst):
            shutil.copyfile(model_path, dst)
    else:
        mnv3file.write_file(net, dst)
    x = np.ascontiguousarray(x, dtype="<f4")
    n = x.shape[0]
    h, w = (x.shape[2], x.shape[3]) if layout == NCHW else (x.shape[1], x.shape[2])
    np.save(os.path.join(out_dir, "input.npy"), x)
    np.save(os.path.join(out_dir, "logits.npy"),
            np.ascontiguousarray(logits, dtype="<f4").reshape(n, net.num_classes))
    np.save(os.path.join(out_dir, "features.npy"),
            np.ascontiguousarray(features, dtype="<f4").reshape(n, net.feature_dim))
    meta = {
        "arch": ARCH_NAMES.get(net.arch, "custom"),
        "flavor": FLAVOR_NAMES.get(net.flavor, "custom"),
        "width_mult": width_mult,
        "classes": net.num_classes,
        "features": net.feature_dim,
        "height": int(h),
        "width": int(w),
        "batch": int(n),
        "layout": "NCHW" if layout == NCHW else "NHWC",
        "tolerance": tolerance,
        "reference": reference,
        "top1": [int(i) for i in np.argmax(logits.reshape(n, -1), axis=1)],
    }
    if reference_probs is not None:
        np.save(os.path.join(out_dir, "reference_probs.npy"),
                np.ascontiguousarray(reference_probs, dtype="<f4").reshape(n, -1))
        meta["topk_min_overlap"] = 3
    if extra_meta:
        meta.update(extra_meta)
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return out_dir


def preprocess_uint8(net: Network, images: np.ndarray, layout: int) -> np.ndarray:
    """uint8 [N,H,W,3] RGB images -> normalised float32 in `layout` (no resize)."""
    p = net.preprocess
    img = images.astype(np.float64)
    if p.channel_order == mnv3file.BGR:
        img = img[..., ::-1]
    x = (img * p.scale - np.array(p.mean)) / np.array(p.std)
    if layout == NCHW:
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def random_images(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random uint8 RGB images, [N,H,W,3]."""
    rng = np.random.default_rng(seed)
    lo_h, lo_w = max(2, height // 16), max(2, width // 16)
    coarse = rng.uniform(0, 255, size=(batch, lo_h, lo_w, 3))
    ys = np.linspace(0, lo_h - 1, height)
    xs = np.linspace(0, lo_w - 1, width)
    y0 = np.floor(ys).astype(int); y1 = np.minimum(y0 + 1, lo_h - 1); fy = (ys - y0)[:, None, None]
    x0 = np.floor(xs).astype(int); x1 = np.minimum(x0 + 1, lo_w - 1); fx = (xs - x0)[:, None]
    rows = coarse[:, y0] * (1 - fy) + coarse[:, y1] * fy
    img = rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx
    return np.clip(img + rng.normal(0, 12, size=img.shape), 0, 255).round().astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the .mnv3 file")
    ap.add_argument("-o", "--output", required=True, help="golden directory to write")
    ap.add_argument("--reference", choices=("torch", "tflite", "numpy"), default="numpy")
    ap.add_argument("--weights", help="torch: the state dict the model was exported from")
    ap.add_argument("--width-mult", type=float, default=1.0, help="torch: width multiplier")
    ap.add_argument("--tflite", help="tflite: the .tflite model the .mnv3 was imported from")
    ap.add_argument("--input", help="uint8 images [N,H,W,3] (.npy); default: random images")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--height", type=int, help="default: the model's preprocess height")
    ap.add_argument("--width", type=int, help="default: the model's preprocess width")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help="allowed max|logit error| / max(1, max|logit|)")
    args = ap.parse_args(argv)

    net = mnv3file.read_file(args.model)
    if args.input:
        images = np.load(args.input)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            print("golden: --input must be uint8 [N,H,W,3]", file=sys.stderr)
            return 1
    else:
        h = args.height or net.preprocess.height or 224
        w = args.width or net.preprocess.width or 224
        images = random_images(args.batch, h, w, args.seed)

    probs = None
    width_mult = None
    if args.reference == "torch":
        import torch
        from .export_torchvision import build_torch_model, network_from_state_dict, torch_features
        if not args.weights:
            print("golden: --reference torch needs --weights", file=sys.stderr)
            return 1
        arch, flavor = ARCH_NAMES[net.arch], FLAVOR_NAMES[net.flavor]
        if arch not in ("large", "small") or flavor not in ("torchvision", "walkthrough"):
            print(f"golden: {arch}/{flavor} has no PyTorch definition here", file=sys.stderr)
            return 1
        sd = torch.load(args.weights, map_location="cpu", weights_only=True)
        ref_net = network_from_state_dict(arch, flavor, args.width_mult, net.num_classes, sd)
        diff = max(float(np.max(np.abs(a.weight - b.weight)))
                   for a, b in zip(ref_net.convs(), net.convs()))
        if diff > 1e-5:
            print(f"golden: warning: {args.model} differs from {args.weights} (max weight "
                  f"difference {diff:g})", file=sys.stderr)
        model = build_torch_model(arch, flavor, args.width_mult, net.num_classes)
        model.load_state_dict(sd)
        model.eval()
        layout = NCHW
        x = preprocess_uint8(net, images, layout)
        with torch.no_grad():
            xt = torch.from_numpy(x)
            logits = model(xt).numpy()
            feats = torch_features(model, xt).numpy()
        reference, width_mult = "pytorch", args.width_mult
    else:
        layout = net.preprocess.layout
        x = preprocess_uint8(net, images, layout)
        logits, feats = mnv3ref.forward(net, x, layout)
        reference = "numpy-float64"
        if args.reference == "tflite":
            if not args.tflite:
                print("golden: --reference tflite needs --tflite MODEL.tflite", file=sys.stderr)
                return 1
            probs = run_tflite(args.tflite, images)
            reference = "tflite (probabilities) + numpy-float64 (logits)"
    out = write_golden(args.output, net, x, layout, logits, feats, model_path=args.model,
                       width_mult=width_mult, reference=reference, tolerance=args.tolerance,
                       reference_probs=probs)
    print(f"wrote {out}: batch {x.shape[0]}, top-1 {np.argmax(logits, axis=1).tolist()}")
    return 0


def run_tflite(path: str, images: np.ndarray) -> np.ndarray:
    """Runs a TFLite model image by image; returns its (dequantized) outputs [N,classes]."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # older installs
        from tflite_runtime.interpreter import Interpreter
    it = Interpreter(model_path=path)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    res = []
    for img in images:
        data = img[None]
        if inp["dtype"] == np.int8:
            data = (data.astype(np.int16) - 128).astype(np.int8)
        elif inp["dtype"] == np.float32:
            data = (data.astype(np.float32) - 127.5) / 127.5
        it.set_tensor(inp["index"], data)
        it.invoke()
        y = it.get_tensor(out["index"]).astype(np.float64)
        scale, zp = out["quantization"]
        if scale:
            y = (y - zp) * scale
        res.append(y.reshape(-1))
    return np.stack(res)


if __name__ == "__main__":
    sys.exit(main())
