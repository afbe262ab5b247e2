"""Plain numpy forward pass of an .mnv3 network description: the Python-side reference for
what the C library computes (clamps included). Internally NHWC, float64 by default."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .modelfile import (ACT_HARD_SIGMOID, ACT_HARD_SWISH, ACT_NONE, ACT_RELU, ACT_RELU6,
                        PAD_SAME, Conv, Network, NCHW)


def _clamp(x: np.ndarray, c) -> np.ndarray:
    lo, hi = c
    if lo == -np.inf and hi == np.inf:
        return x
    return np.clip(x, lo, hi)


def _act(x: np.ndarray, a: int) -> np.ndarray:
    if a == ACT_NONE:
        return x
    if a == ACT_RELU:
        return np.maximum(x, 0)
    if a == ACT_RELU6:
        return np.clip(x, 0, 6)
    if a == ACT_HARD_SWISH:
        return x * np.clip(x + 3, 0, 6) / 6
    if a == ACT_HARD_SIGMOID:
        return np.clip(x + 3, 0, 6) / 6
    raise ValueError(f"activation {a}")


def epilogue(x: np.ndarray, c: Conv) -> np.ndarray:
    if c.bias is not None:
        x = x + c.bias.astype(x.dtype)
    return _clamp(_act(_clamp(x, c.pre_clamp), c.activation), c.post_clamp)


def _same(n: int, k: int, s: int) -> Tuple[int, int]:
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def padding(c: Conv, h: int, w: int) -> Tuple[int, int, int, int]:
    if c.padding_mode == PAD_SAME:
        t, b = _same(h, c.kernel, c.stride)
        l, r = _same(w, c.kernel, c.stride)
        return t, l, b, r
    return tuple(c.pads)


def conv2d(x: np.ndarray, c: Conv) -> np.ndarray:
    """x: [N,H,W,C] -> [N,OH,OW,out] before the epilogue."""
    n, h, w, ci = x.shape
    k, s = c.kernel, c.stride
    wt = c.weight.astype(x.dtype)
    if k == 1 and s == 1 and not c.depthwise and not any(c.pads):
        return x @ wt.reshape(c.out_channels, c.in_channels).T
    t, l, b, r = padding(c, h, w)
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    oh = (h + t + b - k) // s + 1
    ow = (w + l + r - k) // s + 1
    if c.depthwise:
        wt = wt.reshape(k, k, ci)
        out = np.zeros((n, oh, ow, ci), dtype=x.dtype)
        for ky in range(k):
            for kx in range(k):
                out += xp[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s, :] * wt[ky, kx]
        return out
    wt = wt.reshape(c.out_channels, k, k, ci)
    cols = np.empty((n, oh, ow, k, k, ci), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, :, ky, kx, :] = xp[:, ky:ky + s * (oh - 1) + 1:s,
                                          kx:kx + s * (ow - 1) + 1:s, :]
    return cols.reshape(n, oh, ow, k * k * ci) @ wt.reshape(c.out_channels, -1).T


def layer(x: np.ndarray, c: Conv) -> np.ndarray:
    return epilogue(conv2d(x, c), c)


def forward(net: Network, x: np.ndarray, layout: int = NCHW,
            dtype=np.float64) -> Tuple[np.ndarray, np.ndarray]:
    """x: normalised input [N,3,H,W] (NCHW) or [N,H,W,3] (NHWC). Returns (logits, features).
    A quantized network runs its integer arithmetic (mnv3.convert.quant), as mnv3_run does: the input
    quantized with the input scale and zero point, logits and features dequantized."""
    if net.quant is not None:
        return _forward_quantized(net, x, layout)
    x = np.asarray(x, dtype=dtype)
    if layout == NCHW:
        x = x.transpose(0, 2, 3, 1)
    x = layer(x, net.stem)
    for b in net.blocks:
        inp = x
        if b.expand is not None:
            x = layer(x, b.expand)
        x = layer(x, b.depthwise)
        if b.se is not None:
            p = _clamp(x.mean(axis=(1, 2), keepdims=True), b.se.squeeze_clamp)
            g = layer(layer(p, b.se.reduce), b.se.expand)
            x = _clamp(x * g, b.se.scale_clamp)
        x = layer(x, b.project)
        if b.residual:
            x = _clamp(x + inp, b.residual_clamp)
    x = layer(x, net.last_conv)
    feats = _clamp(x.mean(axis=(1, 2)), net.pool_clamp)
    y = feats
    for h in net.head:
        y = epilogue(y @ h.weight.astype(dtype).reshape(h.out_channels, h.in_channels).T, h)
    return y, feats


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _forward_quantized(net: Network, x: np.ndarray, layout: int):
    from . import quant as mnv3quant
    x = np.asarray(x, dtype=np.float32)
    if layout == NCHW:
        x = x.transpose(0, 2, 3, 1)
    scale, zp = net.quant.input
    r = x / np.float32(scale)
    q = np.clip(np.where(r >= 0, np.floor(r + 0.5), -np.floor(-r + 0.5)) + zp, -128, 127)
    logits, feats = [], []
    (ls, lz), (ps, pz) = net.head[-1].quant.result(), net.quant.pool_output
    for img in q.astype(np.int8):
        taps = {}
        y = mnv3quant.forward(net, img, taps)
        logits.append(np.float32(ls) * (y.astype(np.float32) - lz))
        feats.append(np.float32(ps) * (taps["pool"].astype(np.float32) - pz))
    return np.stack(logits).astype(np.float64), np.stack(feats).astype(np.float64)
