#!/usr/bin/env python3
"""Exports a PyTorch MobileNetV3 state dict to an .mnv3 file.

    python3 tools/export_torchvision.py --arch large --flavor torchvision \\
        --weights mobilenet_v3_large.pth --labels imagenet_classes.txt -o large.mnv3

--flavor torchvision reads torchvision.models.mobilenet_v3_{large,small} key names;
--flavor walkthrough reads the keys of tools/walkthrough_model.py. BatchNorm is folded into
the preceding conv (eps 1e-3 torchvision, 1e-5 walkthrough). Every shape is checked against
the architecture; a missing, unexpected or misshapen key is reported by name.
Without --weights a seeded, realistic random model is written (needs torch).
--weights-dtype float16 (or fp16) stores the folded weights as IEEE float16 (format 1.1,
half the file; biases stay float32)."""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional

import numpy as np

from ._options import WEIGHTS_DTYPE_SPELLINGS, weights_dtype
from .arch import BN_EPS, Slot, describe
from .modelfile import IMAGENET_PREPROCESS, Network, with_weight_dtype, write_file


class ExportError(ValueError):
    pass


BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def _unwrap(sd: dict) -> dict:
    """Accepts {'state_dict': ...}/{'model': ...} checkpoints and 'module.' prefixes."""
    for key in ("state_dict", "model", "model_state_dict"):
        if key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _get(sd: dict, key: str, shape, slot: Slot, used: set) -> np.ndarray:
    if key not in sd:
        raise ExportError(f"missing key '{key}' (for {slot.name})")
    v = _np(sd[key])
    used.add(key)
    if tuple(v.shape) != tuple(shape):
        # A fully connected layer may be stored as a 1x1 conv and vice versa.
        alt = ((shape[0], shape[1], 1, 1) if len(shape) == 2 else
               (shape[0], shape[1]) if len(shape) == 4 and shape[2:] == (1, 1) else None)
        if alt is None or tuple(v.shape) != alt:
            raise ExportError(f"key '{key}' has shape {tuple(v.shape)}, expected "
                              f"{tuple(shape)} (for {slot.name})")
    return v


def network_from_state_dict(arch: str, flavor: str, width: float, classes: int,
                            state_dict: Dict, labels: Optional[List[str]] = None) -> Network:
    """Builds the folded .mnv3 description from a state dict; raises ExportError on any
    missing, unexpected or misshapen key."""
    net, slots = describe(arch, flavor, width, classes)
    sd = _unwrap(dict(state_dict))
    eps = BN_EPS[flavor]
    used = set()
    for conv, slot in zip(net.convs(), slots):
        w = _get(sd, slot.weight, slot.torch_shape, slot, used)
        out = slot.torch_shape[0]
        bias = None
        if slot.bn:
            g, b, m, v = (_get(sd, f"{slot.bn}.{s}", (out,), slot, used) for s in BN_SUFFIXES)
            if np.any(v < 0):
                raise ExportError(f"key '{slot.bn}.running_var' has negative entries")
            k = g / np.sqrt(v + eps)
            w = w * k.reshape((out,) + (1,) * (w.ndim - 1))
            bias = b - m * k
            used.add(f"{slot.bn}.num_batches_tracked")
        if slot.bias:
            pb = _get(sd, slot.bias, (out,), slot, used)
            bias = pb if bias is None else bias + pb
        if conv.depthwise:  # [C,1,kh,kw] -> [kh,kw,C]
            w = w.reshape(out, conv.kernel, conv.kernel).transpose(1, 2, 0)
        elif conv.kernel == 1:
            w = w.reshape(out, conv.in_channels)
        else:  # [O,I,kh,kw] -> [O,kh,kw,I]
            w = w.transpose(0, 2, 3, 1)
        conv.weight = np.ascontiguousarray(w, dtype=np.float32)
        conv.bias = None if bias is None else bias.astype(np.float32)
    extra = sorted(k for k in sd if k not in used and not k.endswith("num_batches_tracked"))
    if extra:
        more = f" (and {len(extra) - 5} more)" if len(extra) > 5 else ""
        raise ExportError(f"unexpected key '{extra[0]}'" + (
            f"; also {', '.join(extra[1:5])}{more}" if len(extra) > 1 else "") +
            f": the state dict does not match {arch}/{flavor} width {width} "
            f"with {classes} classes")
    net.preprocess = IMAGENET_PREPROCESS
    if labels is not None:
        if len(labels) != classes:
            raise ExportError(f"{len(labels)} labels for {classes} classes")
        net.labels = list(labels)
    return net


def read_labels(path: str) -> List[str]:
    """One label per line; 'index:name' lines (TF-slim style) are accepted too."""
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\r\n") for ln in f]
    while lines and not lines[-1].strip():
        lines.pop()
    pairs = [ln.split(":", 1) for ln in lines]
    if lines and all(len(p) == 2 and p[0].strip().isdigit() for p in pairs):
        idx = [int(p[0]) for p in pairs]
        if idx != list(range(idx[0], idx[0] + len(idx))):
            raise ExportError(f"{path}: label indices are not consecutive")
        return [p[1].strip() for p in pairs]
    return lines


# ------------------------------------------------------------------------------------------
# PyTorch models and realistic random weights (need torch)
# ------------------------------------------------------------------------------------------

def build_torch_model(arch: str, flavor: str, width: float = 1.0, classes: int = 1000):
    if flavor == "torchvision":
        from ._torchvision_compat import import_torchvision
        tv = import_torchvision()
        ctor = tv.models.mobilenet_v3_large if arch == "large" else tv.models.mobilenet_v3_small
        return ctor(width_mult=width, num_classes=classes)
    from .walkthrough_model import mobilenet_v3_walkthrough
    return mobilenet_v3_walkthrough(arch, width, classes)


def torch_features(model, x):
    """Globally pooled last-conv output of either flavor."""
    import torch
    if hasattr(model, "avgpool"):
        return torch.flatten(model.avgpool(model.features(x)), 1)
    return model.features(x)


def randomize(model, seed: int, x, logit_std: float = 3.0):
    """Seeded random conv weights and BatchNorm statistics, then a calibration pass on `x`:
    every conv+BN output (and each head layer) is rescaled to unit spread, so activations
    stay in a realistic range through the whole depth and the logits are far from zero."""
    import torch
    from torch import nn
    g = torch.Generator().manual_seed(seed)

    def randn(shape, std=1.0):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    def rand(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float32)

    linears = []
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(randn(m.weight.shape, (2.0 / fan_in) ** 0.5))
                if m.bias is not None:
                    m.bias.copy_(randn(m.bias.shape, 0.5))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(randn(m.weight.shape, (1.0 / m.in_features) ** 0.5))
                if m.bias is not None:
                    m.bias.copy_(randn(m.bias.shape, 0.5))
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(randn((n,), 0.5))
                m.running_var.copy_(rand((n,), 0.3, 2.0))
                m.weight.copy_(rand((n,), 0.5, 1.5))
                m.bias.copy_(randn((n,), 0.5))
        # Head layers: torchvision's classifier Linears, the walkthrough's 1x1 convs with bias.
        if hasattr(model, "classifier"):
            linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
        else:
            linears = [model.third_conv.conv, model.output.conv]

    hooks = []

    def bn_hook(mod, inp, out):
        # Per channel: unit spread over the calibration batch, mean a small seeded offset.
        dims = (0, 2, 3)
        s = out.std(dim=dims)
        s = torch.where(s > 1e-6, s, torch.ones_like(s))
        target = randn(s.shape, 0.5)
        mod.weight.div_(s)
        mod.bias.div_(s)
        mean = out.mean(dim=dims) / s
        mod.bias.add_(target - mean)
        shape = (1, -1, 1, 1)
        return (out / s.view(shape)) + (target - mean).view(shape)

    def head_hook(target_std):
        def hook(mod, inp, out):
            s = float(out.std()) / target_std
            if s > 0:
                mod.weight.mul_(1.0 / s)
                if mod.bias is not None:
                    mod.bias.mul_(1.0 / s)
                return out / s
            return out
        return hook

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    for i, m in enumerate(linears):
        hooks.append(m.register_forward_hook(
            head_hook(logit_std if i == len(linears) - 1 else 1.0)))
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return model


def imagelike_input(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random RGB images in [0, 255], ImageNet-normalised, float32 NCHW."""
    rng = np.random.default_rng(seed)
    lo_h, lo_w = max(2, height // 16), max(2, width // 16)
    coarse = rng.uniform(0, 255, size=(batch, 3, lo_h, lo_w))
    ys = np.linspace(0, lo_h - 1, height)
    xs = np.linspace(0, lo_w - 1, width)
    y0 = np.floor(ys).astype(int); y1 = np.minimum(y0 + 1, lo_h - 1); fy = ys - y0
    x0 = np.floor(xs).astype(int); x1 = np.minimum(x0 + 1, lo_w - 1); fx = xs - x0
    rows = coarse[:, :, y0, :] * (1 - fy)[:, None] + coarse[:, :, y1, :] * fy[:, None]
    img = rows[..., x0] * (1 - fx) + rows[..., x1] * fx
    img = np.clip(img + rng.normal(0, 12, size=img.shape), 0, 255)
    p = IMAGENET_PREPROCESS
    mean = np.array(p.mean).reshape(1, 3, 1, 1)
    std = np.array(p.std).reshape(1, 3, 1, 1)
    return ((img * p.scale - mean) / std).astype(np.float32)


def random_model(arch: str, flavor: str, width: float, classes: int, seed: int,
                 height: int = 224, width_px: int = 224, x=None):
    """A realistic random PyTorch model (eval mode), calibrated on `x` (or on seeded
    image-like input)."""
    import torch
    torch.manual_seed(seed)
    model = build_torch_model(arch, flavor, width, classes)
    if x is None:
        x = imagelike_input(2, height, width_px, seed + 1)
    randomize(model, seed, torch.from_numpy(np.asarray(x, dtype=np.float32)))
    return model.eval()


def parser() -> argparse.ArgumentParser:
    """The command line of the exporter."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=("large", "small"), required=True)
    ap.add_argument("--flavor", choices=("torchvision", "walkthrough"), required=True)
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--weights", help="state dict saved with torch.save (.pth)")
    ap.add_argument("--labels", help="class names, one per line (or 'index:name')")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the random model written when --weights is absent")
    ap.add_argument("--weights-dtype", type=weights_dtype, choices=("float32", "float16"),
                    default="float32",
                    help="how the file stores the folded weights (biases stay float32); "
                         f"{WEIGHTS_DTYPE_SPELLINGS}")
    ap.add_argument("-o", "--output", required=True)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        labels = read_labels(args.labels) if args.labels else None
        if args.weights:
            import torch
            sd = torch.load(args.weights, map_location="cpu", weights_only=True)
            if not isinstance(sd, dict):
                raise ExportError(f"{args.weights} does not hold a state dict")
        else:
            sd = random_model(args.arch, args.flavor, args.width_mult, args.num_classes,
                              args.seed).state_dict()
        net = network_from_state_dict(args.arch, args.flavor, args.width_mult,
                                      args.num_classes, sd, labels)
        with_weight_dtype(net, args.weights_dtype)
        size = write_file(net, args.output)
    except (ExportError, ValueError, OSError) as e:
        print(f"export_torchvision: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {size:,} bytes, {net.params():,} parameters, "
          f"{args.weights_dtype} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
