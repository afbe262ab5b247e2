#!/usr/bin/env python3
"""Generates the golden test data the C suite compares against (tests/c/test_networks.c).

    python3 tools/make_goldens.py --out build/goldens            # all configs (needs torch)
    python3 tools/make_goldens.py --out build/goldens --tflite-golden   # only the real
                                                                 # TFLite model (needs tflite)

Each config gets a directory with model.mnv3, input.npy, logits.npy, features.npy and
meta.json (see tools/golden.py). Weights are seeded and realistic: random conv weights and
BatchNorm statistics, calibrated on the input so every conv+BN output has unit spread, so
the logits are far from zero and input-dependent. The reference is PyTorch float32 in eval
mode (torchvision's own model definitions for the torchvision flavor)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "python"))
from mnv3.convert.golden import write_golden  # noqa: E402

# name, arch, flavor, width_mult, classes, height, width, batch
CONFIGS = [
    ("tv_large_w100_c1000_224", "large", "torchvision", 1.0, 1000, 224, 224, 1),
    ("tv_large_w075_c10_160", "large", "torchvision", 0.75, 10, 160, 160, 1),
    ("tv_small_w100_c1000_224_b2", "small", "torchvision", 1.0, 1000, 224, 224, 2),
    ("tv_small_w075_c10_192x128", "small", "torchvision", 0.75, 10, 192, 128, 1),
    ("tv_large_w100_c10_128x192_b2", "large", "torchvision", 1.0, 10, 128, 192, 2),
    ("tv_large_w050_c1000_224", "large", "torchvision", 0.5, 1000, 224, 224, 1),
    ("tv_small_w050_c10_160", "small", "torchvision", 0.5, 10, 160, 160, 1),
    ("walk_large_w100_c1000_224", "large", "walkthrough", 1.0, 1000, 224, 224, 1),
    ("walk_large_w075_c10_192x128", "large", "walkthrough", 0.75, 10, 192, 128, 1),
    ("walk_small_w100_c10_160_b2", "small", "walkthrough", 1.0, 10, 160, 160, 2),
    ("walk_small_w075_c1000_224", "small", "walkthrough", 0.75, 1000, 224, 224, 1),
    # The walkthrough model scales every width, its head's too: each of these widths at two
    # resolutions, one per architecture.
    ("walk_large_w035_c10_128", "large", "walkthrough", 0.35, 10, 128, 128, 1),
    ("walk_small_w035_c100_96x160", "small", "walkthrough", 0.35, 100, 96, 160, 1),
    ("walk_large_w050_c10_160x96", "large", "walkthrough", 0.5, 10, 160, 96, 1),
    ("walk_small_w050_c10_128", "small", "walkthrough", 0.5, 10, 128, 128, 1),
    ("walk_large_w075_c100_96", "large", "walkthrough", 0.75, 100, 96, 96, 1),
    ("walk_small_w075_c10_160x112", "small", "walkthrough", 0.75, 10, 160, 112, 1),
    ("walk_large_w125_c10_112", "large", "walkthrough", 1.25, 10, 112, 112, 1),
    ("walk_small_w125_c10_144x96", "small", "walkthrough", 1.25, 10, 144, 96, 1),
]

TFLITE_NAME = "tflite_small_uint8"
TFLITE_MODEL = "models/mobilenet_v3_small_1.0_224_uint8.tflite"
TFLITE_LABELS = "models/imagenet_labels_1001.txt"
TFLITE_IMAGES = ("chelsea", "coffee")
TFLITE_EXPECT_TOP1 = (286, 968)


def make_torch_golden(out_root: str, cfg, seed: int) -> str:
    import torch
    from mnv3.convert.export_torchvision import (imagelike_input, network_from_state_dict,
                                                 random_model, torch_features)
    name, arch, flavor, wm, classes, h, w, batch = cfg
    x = imagelike_input(batch, h, w, seed)
    model = random_model(arch, flavor, wm, classes, seed, x=x)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        logits = model(xt).numpy()
        feats = torch_features(model, xt).numpy()
    net = network_from_state_dict(arch, flavor, wm, classes, model.state_dict())
    return write_golden(os.path.join(out_root, name), net, x, 0, logits, feats,
                        width_mult=wm, reference="pytorch",
                        extra_meta={"name": name, "seed": seed,
                                    "parameters": sum(p.numel() for p in model.parameters())})


def make_tflite_golden(out_root: str, shared: str) -> str:
    """Imports the real TFLite MobileNetV3-Small and writes its golden: the two sample
    images (NHWC, normalised as the model's metadata says), logits from a float64 numpy
    evaluation of the imported description, and TFLite's own probabilities."""
    from mnv3.convert import reference as mnv3ref
    from mnv3.convert.export_torchvision import read_labels
    from mnv3.convert.golden import preprocess_uint8
    from mnv3.convert.import_tflite import import_tflite
    from mnv3.convert.modelfile import NHWC
    labels = read_labels(os.path.join(shared, TFLITE_LABELS))
    net = import_tflite(os.path.join(shared, TFLITE_MODEL), labels, float_model=True)
    images = np.concatenate([np.load(os.path.join(shared, "images", f"{n}_224_nhwc_uint8.npy"))
                             for n in TFLITE_IMAGES])
    probs = np.concatenate([np.load(os.path.join(shared, "images", f"{n}_tflite_uint8_probs.npy"))
                            for n in TFLITE_IMAGES])
    x = preprocess_uint8(net, images, NHWC)
    logits, feats = mnv3ref.forward(net, x, NHWC)
    top1 = np.argmax(logits, axis=1)
    for n, t, want in zip(TFLITE_IMAGES, top1, TFLITE_EXPECT_TOP1):
        if t != want:
            raise SystemExit(f"make_goldens: {n}: imported model's top-1 is {t}, expected {want}")
    return write_golden(os.path.join(out_root, TFLITE_NAME), net, x, NHWC, logits, feats,
                        reference="tflite (probabilities) + numpy-float64 (logits)",
                        reference_probs=probs,
                        extra_meta={"name": TFLITE_NAME,
                                    "expect_top1": list(TFLITE_EXPECT_TOP1),
                                    "images": list(TFLITE_IMAGES)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="build/goldens", help="root directory of the goldens")
    ap.add_argument("--only", nargs="*", help="config names to generate (see --list)")
    ap.add_argument("--list", action="store_true", help="print the config names")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--shared", default=os.environ.get("MNV3_SHARED_DIR", "../shared"),
                    help="directory with models/ and images/ of the real TFLite model")
    ap.add_argument("--tflite-golden", action="store_true",
                    help="only the golden of the real TFLite model (no torch needed)")
    ap.add_argument("--no-tflite", action="store_true", help="skip the TFLite golden")
    args = ap.parse_args(argv)
    if args.list:
        for c in CONFIGS:
            print(c[0])
        print(TFLITE_NAME)
        return 0
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    if not args.tflite_golden:
        for i, cfg in enumerate(CONFIGS):
            if args.only and cfg[0] not in args.only:
                continue
            t = time.time()
            make_torch_golden(args.out, cfg, args.seed + 17 * i)
            print(f"golden {cfg[0]} ({time.time() - t:.1f} s)")
    want_tflite = not args.no_tflite and (not args.only or TFLITE_NAME in args.only)
    if want_tflite:
        if not os.path.exists(os.path.join(args.shared, TFLITE_MODEL)):
            print(f"skipping {TFLITE_NAME}: {os.path.join(args.shared, TFLITE_MODEL)} not found")
        else:
            if importlib.util.find_spec("tflite") is None:
                print(f"skipping {TFLITE_NAME}: python package 'tflite' not installed "
                      "(pip install -r tools/requirements.txt)")
            else:
                make_tflite_golden(args.out, args.shared)
                print(f"golden {TFLITE_NAME}")
    print(f"goldens written to {args.out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
