#!/usr/bin/env python3
"""Post-training quantization: a float .mnv3 model becomes an int8 .mnv3 model.

    tools/quantize.py FLOAT.mnv3 -o INT8.mnv3 --calib PATH [PATH ...]
                      [--method minmax|percentile|mse] [--percentile 99.99]
                      [--holdout N] [--max-inputs N] [--json REPORT]

The float model can come from any exporter (tools/export_torchvision.py, the walkthrough
model, tools/import_tflite.py --float). Weights are quantized per output channel,
symmetrically, to [-127, 127]; biases to int32 on the accumulator's scale. Every activation
slot (each conv's output, the hard-swish results, the SE squeeze, the gated tensor, each
residual sum, the global pool, the input) gets a scale and zero point from its values over
the calibration inputs:

    minmax      the smallest range holding every value;
    percentile  the range from the lower and upper --percentile of the values (outliers
                clipped: finer steps for the bulk of the values);
    mse         per slot, the clipped range (a fraction of the min/max one) whose
                quantization error over the values is smallest.

Inputs (--calib) are .npy files or folders of them, and images (.png, .jpg) when Pillow is
installed: a uint8 array [H,W,3] or [N,H,W,3] is an RGB image, resized and normalised as the
model's PREPROCESS section says; a float array [N,3,H,W] or [N,H,W,3] (the model's layout) is
a ready model input. The last --holdout inputs are kept out of calibration and used to
report how the int8 model agrees with the float one: top-1 agreement and logit error. The
int8 model is evaluated with mnv3.convert.quant, the integer mirror of the C library.

Only numpy is needed (Pillow for images)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from . import quant as mq
from . import reference as mnv3ref
from .modelfile import (ACT_HARD_SIGMOID, ACT_HARD_SWISH, ACT_NONE, ACT_RELU, ACT_RELU6,
                        NCHW, NHWC, BlockQuant, Conv, ConvQuant, FormatError, NetQuant, Network,
                        read_file, validate, write_file)

METHODS = ("minmax", "percentile", "mse")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class QuantizeError(ValueError):
    """The model or the inputs cannot be quantized as asked."""


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------

def _resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of an [H, W, 3] image to [h, w, 3] (float64)."""
    src = img.astype(np.float64)
    sh, sw = src.shape[:2]
    if (sh, sw) == (h, w):
        return src

    def axis(n_out: int, n_in: int):
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    y0, y1, fy = axis(h, sh)
    x0, x1, fx = axis(w, sw)
    top = src[y0][:, x0] * (1 - fx)[None, :, None] + src[y0][:, x1] * fx[None, :, None]
    bot = src[y1][:, x0] * (1 - fx)[None, :, None] + src[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def _normalise(net: Network, img: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> model input [1, H', W', 3] (NHWC, float64)."""
    p = net.preprocess
    h = p.height or img.shape[0]
    w = p.width or img.shape[1]
    x = _resize_bilinear(img, h, w)
    if p.channel_order == 1:  # BGR
        x = x[..., ::-1]
    x = (x * p.scale - np.asarray(p.mean)) / np.asarray(p.std)
    return x[None]


def _expand(path: str) -> List[str]:
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        return [os.path.join(path, n) for n in names
                if n.lower().endswith((".npy",) + IMAGE_EXTENSIONS)]
    return [path]


def load_inputs(net: Network, paths: Iterable[str]) -> List[np.ndarray]:
    """Every input named by paths as a [1, H, W, 3] NHWC float64 array."""
    out: List[np.ndarray] = []
    for top in paths:
        if not os.path.exists(top):
            raise QuantizeError(f"{top}: no such file or folder")
        for path in _expand(top):
            if path.lower().endswith(IMAGE_EXTENSIONS):
                try:
                    from PIL import Image
                except ImportError:
                    raise QuantizeError(f"{path}: reading images needs Pillow "
                                        "(pip install pillow), or give .npy arrays") from None
                with Image.open(path) as im:
                    out.append(_normalise(net, np.asarray(im.convert("RGB"))))
                continue
            a = np.load(path, allow_pickle=False)
            if a.dtype == np.uint8:
                imgs = a[None] if a.ndim == 3 else a
                if imgs.ndim != 4 or imgs.shape[-1] != 3:
                    raise QuantizeError(f"{path}: a uint8 array must be [H,W,3] or [N,H,W,3], "
                                        f"not {list(a.shape)}")
                out += [_normalise(net, im) for im in imgs]
            elif np.issubdtype(a.dtype, np.floating):
                if a.ndim == 3:
                    a = a[None]
                if a.ndim != 4:
                    raise QuantizeError(f"{path}: a float array must be a model input "
                                        f"[N,3,H,W] or [N,H,W,3], not {list(a.shape)}")
                if net.preprocess.layout == NCHW:
                    if a.shape[1] != 3:
                        raise QuantizeError(f"{path}: the model takes NCHW input, "
                                            f"shape {list(a.shape)} is not [N,3,H,W]")
                    a = a.transpose(0, 2, 3, 1)
                elif a.shape[-1] != 3:
                    raise QuantizeError(f"{path}: the model takes NHWC input, "
                                        f"shape {list(a.shape)} is not [N,H,W,3]")
                if not np.all(np.isfinite(a)):
                    raise QuantizeError(f"{path}: the input holds NaN or infinity")
                out += [x[None].astype(np.float64) for x in a]
            else:
                raise QuantizeError(f"{path}: arrays of {a.dtype} are neither images (uint8) "
                                    "nor model inputs (float)")
    return out


# ------------------------------------------------------------------------------------------
# Float pass that records every activation slot
# ------------------------------------------------------------------------------------------

class Observer:
    """Values seen per activation slot, kept as a bounded random sample plus the exact
    extremes (so min/max is exact and the other methods see a fair sample)."""

    def __init__(self, sample: int = 200_000, seed: int = 0):
        self.sample = sample
        self.rng = np.random.default_rng(seed)
        self.lo: Dict[str, float] = {}
        self.hi: Dict[str, float] = {}
        self.values: Dict[str, List[np.ndarray]] = {}

    def __call__(self, name: str, v: np.ndarray) -> np.ndarray:
        flat = np.asarray(v, np.float64).ravel()
        self.lo[name] = min(self.lo.get(name, np.inf), float(flat.min()))
        self.hi[name] = max(self.hi.get(name, -np.inf), float(flat.max()))
        if flat.size > self.sample:
            flat = self.rng.choice(flat, self.sample, replace=False)
        self.values.setdefault(name, []).append(flat)
        return v

    def samples(self, name: str) -> np.ndarray:
        return np.concatenate(self.values[name])


def _conv_slots(x: np.ndarray, c: Conv, name: str, see) -> np.ndarray:
    """A float conv, recording its pre-activation value (conv + bias, inside its pre clamp)
    as name and, for hard-swish / hard-sigmoid, the activation's result as name + '.act'."""
    pre = mnv3ref.conv2d(x, c)
    if c.bias is not None:
        pre = pre + c.bias
    pre = mnv3ref._clamp(pre, c.pre_clamp)
    y = mnv3ref._clamp(mnv3ref._act(pre, c.activation), c.post_clamp)
    if c.activation in (ACT_HARD_SWISH, ACT_HARD_SIGMOID):
        see(name, pre)
        see(name + ".act", y)
    else:
        see(name, y)
    return y


def observe(net: Network, x: np.ndarray, see) -> np.ndarray:
    """Float forward pass of one NHWC input, calling see(slot, values) for every slot.
    Returns the logits."""
    see("input", x)
    x = _conv_slots(x, net.stem, "stem", see)
    for i, b in enumerate(net.blocks):
        inp = x
        if b.expand is not None:
            x = _conv_slots(x, b.expand, f"block{i}.expand", see)
        x = _conv_slots(x, b.depthwise, f"block{i}.depthwise", see)
        if b.se is not None:
            p = see(f"block{i}.se.pool",
                    mnv3ref._clamp(x.mean(axis=(1, 2), keepdims=True), b.se.squeeze_clamp))
            r = _conv_slots(p, b.se.reduce, f"block{i}.se.reduce", see)
            g = _conv_slots(r, b.se.expand, f"block{i}.se.expand", see)
            x = see(f"block{i}.se.scaled", mnv3ref._clamp(x * g, b.se.scale_clamp))
        x = _conv_slots(x, b.project, f"block{i}.project", see)
        if b.residual:
            x = see(f"block{i}.residual", mnv3ref._clamp(x + inp, b.residual_clamp))
    x = _conv_slots(x, net.last_conv, "last_conv", see)
    y = see("pool", mnv3ref._clamp(x.mean(axis=(1, 2), keepdims=True), net.pool_clamp))
    for i, h in enumerate(net.head):
        y = _conv_slots(y, h, f"head{i}", see)
    return y.reshape(y.shape[0], -1)


# ------------------------------------------------------------------------------------------
# Ranges and quantization parameters
# ------------------------------------------------------------------------------------------

def qparam(lo: float, hi: float) -> Tuple[float, int]:
    """Asymmetric int8 scale and zero point covering [lo, hi] (widened to hold 0, so that
    zero, the padding value, is exact)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(mq.round_half_away(-128 - lo / scale), -128, 127))
    return scale, zp


def _quant_error(v: np.ndarray, lo: float, hi: float) -> float:
    s, z = qparam(lo, hi)
    q = np.clip(np.round(v / s) + z, -128, 127)
    return float(np.mean(((q - z) * s - v) ** 2))


def choose_range(obs: Observer, name: str, method: str, percentile: float) -> Tuple[float, float]:
    lo, hi = obs.lo[name], obs.hi[name]
    if method == "minmax" or lo == hi:
        return lo, hi
    v = obs.samples(name)
    if method == "percentile":
        plo = float(np.percentile(v, 100.0 - percentile)) if lo < 0 else lo
        phi = float(np.percentile(v, percentile)) if hi > 0 else hi
        return min(plo, 0.0) if lo < 0 else lo, max(phi, 0.0) if hi > 0 else hi
    # mse: shrink the min/max range by a common factor, keep the best.
    best, best_err = (lo, hi), _quant_error(v, lo, hi)
    for f in np.linspace(0.3, 0.99, 24):
        err = _quant_error(v, lo * f, hi * f)
        if err < best_err:
            best, best_err = (lo * f, hi * f), err
    return best


def quantize_weights(c: Conv) -> Tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights and their scales."""
    w = np.asarray(c.weight, np.float64)
    per_out = w.reshape(-1, c.out_channels) if c.depthwise else w.reshape(c.out_channels, -1).T
    amax = np.abs(per_out).max(axis=0)
    # An all-zero channel still needs a positive scale; its weights stay 0 whatever it is.
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(per_out / scale.astype(np.float64)), -127, 127).astype(np.int8)
    q = q.reshape(w.shape) if c.depthwise else q.T.reshape(w.shape)
    return q, scale


def quantize_conv(c: Conv, name: str, in_q, see_range) -> Tuple[float, int]:
    """Turns a float conv into a quantized one in place; returns its result's qparam."""
    if c.weight is None or not np.issubdtype(np.asarray(c.weight).dtype, np.floating):
        raise QuantizeError(f"{name}: the model is not a float model")
    wq, wscale = quantize_weights(c)
    bias_scale = None
    qbias = None
    if c.bias is not None:
        bias_scale = (np.float32(in_q[0]) * wscale).astype(np.float32)
        qb = np.round(np.asarray(c.bias, np.float64) / bias_scale.astype(np.float64))
        if np.any(np.abs(qb) > 2**31 - 1):
            raise QuantizeError(f"{name}: a bias does not fit int32 at this input scale")
        qbias = qb.astype(np.int32)
    act = c.activation
    out = see_range(name)
    table, table_out = None, (0.0, 0)
    act_range = (-128, 127)
    if act == ACT_HARD_SWISH:
        table_out = see_range(name + ".act")
        table = mq.hard_swish_table(out[0], out[1], table_out[0], table_out[1])
    elif act == ACT_HARD_SIGMOID:
        table_out = see_range(name + ".act")
        s_in, z_in = out
        s_out, z_out = table_out

        def hard_sigmoid(b):
            real = (b - z_in) * np.float64(s_in)
            y = np.clip(real + 3.0, 0.0, 6.0) / 6.0
            return np.clip(np.round(y / s_out) + z_out, -128, 127)
        table = mq.elementwise_table(hard_sigmoid)
    elif act == ACT_RELU:
        act_range = mq.activation_range("relu", out[0], out[1])
    elif act == ACT_RELU6:
        act_range = mq.activation_range("relu6", out[0], out[1])
    elif act != ACT_NONE:
        raise QuantizeError(f"{name}: activation {act} has no int8 form")
    c.weight = wq
    c.bias = qbias
    c.pre_clamp = (-np.inf, np.inf)
    c.post_clamp = (-np.inf, np.inf)
    c.quant = ConvQuant(output=out, weight_scale=wscale, bias_scale=bias_scale,
                        weight_zero_point=0, act_range=act_range, mult_mode=mq.MULT_DOUBLE,
                        table=table, table_output=table_out if table is not None else (0.0, 0))
    return c.quant.result()


def quantize_network(net: Network, obs: Observer, method: str, percentile: float) -> Network:
    """Quantizes net in place from the ranges obs saw; returns it."""
    def see_range(name: str) -> Tuple[float, int]:
        if name not in obs.lo:
            raise QuantizeError(f"no calibration values for {name}")
        return qparam(*choose_range(obs, name, method, percentile))

    in_q = see_range("input")
    xq = quantize_conv(net.stem, "stem", in_q, see_range)
    for i, b in enumerate(net.blocks):
        bq = BlockQuant(se_pool_mode=mq.POOL_MEAN)
        if b.expand is not None:
            xq = quantize_conv(b.expand, f"block{i}.expand", xq, see_range)
        xq = quantize_conv(b.depthwise, f"block{i}.depthwise", xq, see_range)
        if b.se is not None:
            bq.se_pool_output = see_range(f"block{i}.se.pool")
            rq = quantize_conv(b.se.reduce, f"block{i}.se.reduce", bq.se_pool_output,
                               see_range)
            quantize_conv(b.se.expand, f"block{i}.se.expand", rq, see_range)
            bq.se_mul_output = see_range(f"block{i}.se.scaled")
            b.se.squeeze_clamp = (-np.inf, np.inf)
            b.se.scale_clamp = (-np.inf, np.inf)
            xq = bq.se_mul_output
        xq = quantize_conv(b.project, f"block{i}.project", xq, see_range)
        if b.residual:
            bq.residual_output = see_range(f"block{i}.residual")
            b.residual_clamp = (-np.inf, np.inf)
            xq = bq.residual_output
        b.quant = bq
    xq = quantize_conv(net.last_conv, "last_conv", xq, see_range)
    pool_q = see_range("pool")
    net.pool_clamp = (-np.inf, np.inf)
    xq = pool_q
    for i, h in enumerate(net.head):
        xq = quantize_conv(h, f"head{i}", xq, see_range)
    net.quant = NetQuant(in_q, mq.POOL_MEAN, pool_q)
    return net


# ------------------------------------------------------------------------------------------
# Agreement with the float model
# ------------------------------------------------------------------------------------------

def quantize_input(x: np.ndarray, q: Tuple[float, int]) -> np.ndarray:
    """A float NHWC input [1,H,W,3] as the int8 tensor the quantized model reads [H,W,3],
    rounding as the C library's mnv3_run does (half away from zero, then clamped)."""
    v = np.asarray(x[0], np.float64) / np.float64(np.float32(q[0]))
    r = np.where(v >= 0, np.floor(v + 0.5), -np.floor(-v + 0.5))
    return np.clip(r + q[1], -128, 127).astype(np.int8)


def dequantize(v: np.ndarray, q: Tuple[float, int]) -> np.ndarray:
    return (v.astype(np.float64) - q[1]) * q[0]


def agreement(float_net: Network, qnet: Network, inputs: List[np.ndarray]) -> Dict[str, float]:
    out_q = qnet.head[-1].quant.result()
    top1 = 0
    max_abs = 0.0
    mean_abs = []
    rel = []
    for x in inputs:
        fl = observe(float_net, x, lambda _n, v: v)[0]
        ql = dequantize(mq.forward(qnet, quantize_input(x, qnet.quant.input)), out_q)
        top1 += int(np.argmax(fl) == np.argmax(ql))
        err = np.abs(fl - ql)
        max_abs = max(max_abs, float(err.max()))
        mean_abs.append(float(err.mean()))
        rel.append(float(err.max() / max(np.abs(fl).max(), 1e-12)))
    n = len(inputs)
    return {"inputs": n, "top1_agreement": top1 / n if n else float("nan"),
            "max_abs_logit_error": max_abs,
            "mean_abs_logit_error": float(np.mean(mean_abs)) if n else float("nan"),
            "max_relative_logit_error": max(rel) if n else float("nan")}


# ------------------------------------------------------------------------------------------

def quantize_file(src: str, dst: str, calib: List[str], method: str = "percentile",
                  percentile: float = 99.99, holdout: int = 1, max_inputs: int = 0,
                  log=print) -> Dict[str, object]:
    if method not in METHODS:
        raise QuantizeError(f"method {method!r}: one of {', '.join(METHODS)}")
    if not 50.0 < percentile <= 100.0:
        raise QuantizeError(f"percentile {percentile} is not in (50, 100]")
    float_net = read_file(src)
    if float_net.quant is not None:
        raise QuantizeError(f"{src} is already quantized")
    inputs = load_inputs(float_net, calib)
    if max_inputs:
        inputs = inputs[:max_inputs]
    if holdout < 0 or len(inputs) - holdout < 1:
        raise QuantizeError(f"{len(inputs)} inputs: need at least one for calibration beyond "
                            f"the {holdout} held out")
    cal, held = inputs[:len(inputs) - holdout], inputs[len(inputs) - holdout:]
    obs = Observer()
    for x in cal:
        observe(float_net, x, obs)
    qnet = quantize_network(read_file(src), obs, method, percentile)
    try:
        validate(qnet)
    except FormatError as e:
        raise QuantizeError(f"the quantized model is not valid: {e}") from None
    size = write_file(qnet, dst)
    report: Dict[str, object] = {"output": dst, "bytes": size, "method": method,
                                 "calibration_inputs": len(cal)}
    if method == "percentile":
        report["percentile"] = percentile
    if held:
        report.update(agreement(float_net, read_file(dst), held))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("model", help="the float .mnv3 model")
    ap.add_argument("-o", "--output", required=True, help="the int8 .mnv3 model to write")
    ap.add_argument("--calib", nargs="+", required=True,
                    help=".npy files, images, or folders of them")
    ap.add_argument("--method", choices=METHODS, default="percentile")
    ap.add_argument("--percentile", type=float, default=99.99)
    ap.add_argument("--holdout", type=int, default=1,
                    help="inputs (the last ones) kept out of calibration to measure agreement")
    ap.add_argument("--max-inputs", type=int, default=0, help="use at most this many inputs")
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args(argv)
    try:
        report = quantize_file(args.model, args.output, args.calib, args.method,
                               args.percentile, args.holdout, args.max_inputs)
    except (QuantizeError, FormatError, mq.QuantError, OSError, ValueError) as e:
        print(f"quantize: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {report['output']}: {report['bytes']:,} bytes, int8, {report['method']} "
          f"ranges from {report['calibration_inputs']} inputs")
    if "top1_agreement" in report:
        print(f"held out {report['inputs']}: top-1 agreement {report['top1_agreement']:.3f}, "
              f"max |logit error| {report['max_abs_logit_error']:.4g}, "
              f"mean {report['mean_abs_logit_error']:.4g}, "
              f"max relative {report['max_relative_logit_error']:.4g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
