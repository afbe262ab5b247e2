"""Integer arithmetic of quantized networks, exactly as TensorFlow Lite's reference kernels
(the BUILTIN_REF op resolver) compute it: the Python mirror of csrc/quant.c.

Conventions (as in the C library): activations are int8 with a per-tensor scale and zero
point. A uint8 tensor is represented as the int8 tensor x - 128 with zero point zp - 128,
which is exact for every op here (they all work on x - zp) except the average pool, whose
rounding of the raw sum differs: see avg_pool(). Scales are float32 values, as TFLite keeps
them; multipliers are derived from them in double precision the way each op's Prepare does.
All arrays are numpy integer arrays; nothing here uses float arithmetic on activations."""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

INT8_MIN, INT8_MAX = -128, 127

# How a conv's real multiplier in_scale * w_scale / out_scale is formed. TFLite's per-channel
# path multiplies the scales in double; its per-tensor (uint8) path multiplies the two float32
# scales in float32 first and divides in double. The rounding of the float32 product can move
# the fixed-point multiplier by one unit, so the mode is part of the model.
MULT_DOUBLE = 0
MULT_FLOAT_PRODUCT = 1

# Global average: how a channel sum of n bytes becomes a byte.
POOL_AVG_HALF_UP = 0      # AVERAGE_POOL_2D of a uint8 graph: (sum_u8 + n/2) / n
POOL_AVG_HALF_AWAY = 1    # AVERAGE_POOL_2D of an int8 graph: rounds half away from zero
POOL_MEAN = 2             # MEAN over H, W: requantized, then divided rounding half away


class QuantError(ValueError):
    """A quantization parameter has no exact integer implementation."""


# Fixed-point primitives --------------------------------------------------------------------

def quantize_multiplier(m: float) -> Tuple[int, int]:
    """TFLite's QuantizeMultiplier: m = q * 2^shift with q in [2^30, 2^31) (q = 0 for m = 0
    or m < 2^-31). Raises QuantError where TFLite's kernels could not represent m."""
    m = float(m)
    if not math.isfinite(m) or m < 0:
        raise QuantError(f"multiplier {m!r} is not a finite non-negative number")
    if m == 0.0:
        return 0, 0
    q, exponent = math.frexp(m)
    fixed = round_half_away(q * 2147483648.0)
    if fixed == 1 << 31:
        fixed //= 2
        exponent += 1
    if exponent < -31:
        return 0, 0
    if exponent > 31:
        raise QuantError(f"multiplier {m!r} needs a left shift of {exponent} > 31")
    return int(fixed), int(exponent)


def round_half_away(v: float) -> int:
    """C's round(): halves away from zero (Python's round() goes to even)."""
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def _as64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values."""
    a, b = np.broadcast_arrays(_as64(a), _as64(b))
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division truncates toward zero
    return np.where((a == -(1 << 31)) & (b == -(1 << 31)), (1 << 31) - 1, q)


def rounding_shift(x, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, ties away from zero."""
    x = _as64(x)
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(x, mult: int, shift: int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (the reference kernels' double rounding). mult and
    shift may be arrays broadcast against x (per channel)."""
    x = _as64(x)
    mult = _as64(mult)
    shift = _as64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _wrap32(x << left)
    high = doubling_high_mul(shifted, mult)
    if right.ndim == 0:
        return rounding_shift(high, int(right))
    high, right = np.broadcast_arrays(high, right)
    out = np.empty_like(high)
    for r in np.unique(right):
        sel = right == r
        out[sel] = rounding_shift(high[sel], int(r))
    return out


def clamp8(v, lo: int = INT8_MIN, hi: int = INT8_MAX) -> np.ndarray:
    return np.clip(_as64(v), lo, hi).astype(np.int8)


def f32(v) -> float:
    """v rounded to float32, as a Python float."""
    return float(np.float32(v))


# Multipliers as each op's Prepare derives them --------------------------------------------

def conv_multiplier(in_scale: float, w_scale: float, out_scale: float, mode: int) -> float:
    if mode == MULT_FLOAT_PRODUCT:
        return float(np.float32(in_scale) * np.float32(w_scale)) / float(np.float32(out_scale))
    return f32(in_scale) * f32(w_scale) / f32(out_scale)


def bias_scale_ok(in_scale: float, w_scale: float, bias_scale: float, out_scale: float) -> bool:
    """TFLite's check that the int32 bias is on the accumulator's scale."""
    diff = abs(f32(in_scale) * f32(w_scale) - f32(bias_scale))
    return diff / f32(out_scale) <= 0.02


def activation_range(act: str, scale: float, zp: int) -> Tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output (uint8: shift by 128 first)."""
    def q(v: float) -> int:
        return zp + round_half_away(f32(np.float32(v) / np.float32(scale)))
    lo, hi = INT8_MIN, INT8_MAX
    if act == "relu":
        lo = max(lo, q(0.0))
    elif act == "relu6":
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif act == "relu_n1_to_1":
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    elif act != "none":
        raise QuantError(f"fused activation {act} has no integer range")
    return lo, hi


# Convolutions ------------------------------------------------------------------------------

def same_padding(n: int, k: int, s: int) -> Tuple[int, int]:
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_acc(x: np.ndarray, xzp: int, w: np.ndarray, wzp: int, bias: np.ndarray, kernel: int,
             stride: int, pads: Tuple[int, int, int, int], depthwise: bool) -> np.ndarray:
    """int32 accumulators of a conv over int8 x [H, W, C]: bias + sum (x - xzp) (w - wzp),
    taps in the padding contributing 0. w: dense [out][kh][kw][in], depthwise [kh][kw][c],
    1x1 [out][in]. Sums are exact (float64 holds them: |terms| < 2^16, counts < 2^20)."""
    h, wd, c = x.shape
    t, l, b, r = pads
    xs = x.astype(np.float64) - xzp
    xp = np.zeros((h + t + b, wd + l + r, c), np.float64)
    xp[t:t + h, l:l + wd] = xs
    oh = (h + t + b - kernel) // stride + 1
    ow = (wd + l + r - kernel) // stride + 1
    wf = w.astype(np.float64) - wzp
    if depthwise:
        acc = np.zeros((oh, ow, c), np.float64)
        wf = wf.reshape(kernel, kernel, c)
        for ky in range(kernel):
            for kx in range(kernel):
                acc += xp[ky:ky + stride * oh:stride, kx:kx + stride * ow:stride] * wf[ky, kx]
    else:
        out = wf.shape[0]
        wf = wf.reshape(out, kernel, kernel, c)
        acc = np.zeros((oh, ow, out), np.float64)
        for ky in range(kernel):
            for kx in range(kernel):
                patch = xp[ky:ky + stride * oh:stride, kx:kx + stride * ow:stride]
                acc += patch @ wf[:, ky, kx, :].T
    return np.rint(acc).astype(np.int64) + np.asarray(bias, np.int64)


def conv_output(acc: np.ndarray, mults, shifts, out_zp: int, lo: int, hi: int) -> np.ndarray:
    return clamp8(requantize(acc, mults, shifts) + out_zp, lo, hi)


# Elementwise ops ---------------------------------------------------------------------------

def add_params(s1: float, s2: float, s_out: float):
    """TFLite ADD's Prepare for 8-bit inputs (left shift 20)."""
    s1, s2, s_out = f32(s1), f32(s2), f32(s_out)
    twice_max = 2 * max(s1, s2)
    return (quantize_multiplier(s1 / twice_max), quantize_multiplier(s2 / twice_max),
            quantize_multiplier(twice_max / ((1 << 20) * s_out)))


def add(a, azp: int, b, bzp: int, params, out_zp: int, lo: int = INT8_MIN,
        hi: int = INT8_MAX) -> np.ndarray:
    (m1, e1), (m2, e2), (mo, eo) = params
    a2 = requantize((_as64(a) - azp) << 20, m1, e1)
    b2 = requantize((_as64(b) - bzp) << 20, m2, e2)
    return clamp8(requantize(a2 + b2, mo, eo) + out_zp, lo, hi)


def mul_params(s1: float, s2: float, s_out: float) -> Tuple[int, int]:
    return quantize_multiplier(f32(s1) * f32(s2) / f32(s_out))


def mul(a, azp: int, b, bzp: int, params, out_zp: int, lo: int = INT8_MIN,
        hi: int = INT8_MAX) -> np.ndarray:
    m, e = params
    return clamp8(requantize((_as64(a) - azp) * (_as64(b) - bzp), m, e) + out_zp, lo, hi)


# HARD_SWISH --------------------------------------------------------------------------------

def _srdhm16(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(_as64(a), _as64(b))
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    s = ab + nudge
    q = np.where(s >= 0, s >> 15, -((-s) >> 15))
    q = ((q + 32768) & 0xFFFF) - 32768  # static_cast<int16_t>
    return np.where((a == -32768) & (b == -32768), 32767, q)


def _sdhm16(a, b) -> np.ndarray:
    """Doubling high multiply rounding toward zero (like SQDMULH)."""
    a, b = np.broadcast_arrays(_as64(a), _as64(b))
    ab = a * b
    q = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    q = ((q + 32768) & 0xFFFF) - 32768
    return np.where((a == -32768) & (b == -32768), 32767, q)


def _sat_lshift16(v, amount: int) -> np.ndarray:
    return np.clip(_as64(v) * (1 << amount), -32768, 32767)


def _downscale16(m32: int) -> int:
    if m32 >= (1 << 31) - 1 - (1 << 15):
        return 32767
    return (m32 + (1 << 15)) >> 16


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """HARD_SWISH of every int8 input byte (index byte + 128), as TFLite's reference
    computes it, int16 fixed point with the multipliers of its Prepare (float32 ratios)."""
    hires = np.float32(1.0 / 128.0) * np.float32(in_scale)
    out_mult = float(np.float32(hires / np.float32(out_scale)))
    relu_mult = float(np.float32(hires / np.float32(3.0 / 32768.0)))
    om, oe = quantize_multiplier(out_mult)
    rm, re_ = quantize_multiplier(relu_mult)
    if oe > 0:
        raise QuantError("HARD_SWISH output multiplier above 1 (TFLite refuses it)")
    om16, rm16 = _downscale16(om), _downscale16(rm)
    x = np.arange(-128, 128, dtype=np.int64)
    v = x - in_zp
    hires_v = v * 128
    pre_out = _srdhm16(hires_v, om16)
    relu = hires_v
    if re_ > 0:
        relu = _sat_lshift16(relu, re_ - 1)
    relu = _srdhm16(relu, rm16)
    if re_ > 0:
        relu = _sat_lshift16(relu, 1)
    if re_ < 0:
        relu = rounding_shift(relu, -re_)
    relu = (relu + (1 << 15)) >> 1
    out = _sdhm16(relu, pre_out)
    out = rounding_shift(out, -oe)
    return clamp8(out + out_zp)


def elementwise_table(fn) -> np.ndarray:
    """The table of any op of one int8 input: fn maps an int64 array of the 256 bytes."""
    return np.asarray(fn(np.arange(-128, 128, dtype=np.int64)), np.int8)


# Pools -------------------------------------------------------------------------------------

def pool_multiplier(in_scale: float, out_scale: float) -> Tuple[int, int]:
    return quantize_multiplier(f32(in_scale) / f32(out_scale))


def mean_multiplier(mult: Tuple[int, int], n: int) -> Tuple[int, int]:
    """MEAN folds the division by the n reduced elements into its multiplier: q * 2^k / n in
    integers, k = min(floor(log2 n), 32, 31 + shift), and the shift lowered by k."""
    m, e = mult
    k = min(n.bit_length() - 1, 32, 31 + e)
    return (m << k) // n, e - k


def global_pool(x: np.ndarray, in_zp: int, mode: int, out_zp: int, mult: Tuple[int, int] = (0, 0)
                ) -> np.ndarray:
    """x: [H, W, C] int8 -> [C] int8. Average pools keep scale and zero point (out_zp must
    equal in_zp); MEAN requantizes with mult = in_scale / out_scale."""
    n = x.shape[0] * x.shape[1]
    s = _as64(x).reshape(n, -1).sum(axis=0)
    half = n // 2
    if mode == POOL_AVG_HALF_UP:
        return clamp8((s + half) // n)
    if mode == POOL_AVG_HALF_AWAY:
        return clamp8(np.where(s > 0, (s + half) // n, -((-s + half) // n)))
    if mode == POOL_MEAN:
        m, e = mean_multiplier(mult, n)
        return clamp8(requantize(s - n * in_zp, m, e) + out_zp)
    raise QuantError(f"pool mode {mode}")


# Whole networks ----------------------------------------------------------------------------

def _conv_layer(c, x: np.ndarray, xq) -> np.ndarray:
    """One quantized conv of an .mnv3 Network (mnv3file.Conv with .quant) on int8 x [H,W,C]
    whose quantization is xq; returns its result (after the table, if any)."""
    q = c.quant
    h, w = x.shape[:2]
    if c.padding_mode == 1:  # SAME
        t, b = same_padding(h, c.kernel, c.stride)
        l, r = same_padding(w, c.kernel, c.stride)
    else:
        t, l, b, r = c.pads
    bias = c.bias if c.bias is not None else np.zeros(c.out_channels, np.int64)
    acc = conv_acc(x, xq[1], c.weight, q.weight_zero_point, bias, c.kernel, c.stride,
                   (t, l, b, r), c.depthwise)
    mults = [quantize_multiplier(conv_multiplier(xq[0], s, q.output[0], q.mult_mode))
             for s in q.weight_scale]
    y = conv_output(acc, np.array([m for m, _ in mults]), np.array([e for _, e in mults]),
                    q.output[1], *q.act_range)
    if q.table is not None:
        y = np.asarray(q.table, np.int8)[y.astype(np.int64) + 128]
    return y


def _pool(x: np.ndarray, xq, mode: int, out_q) -> np.ndarray:
    mult = pool_multiplier(xq[0], out_q[0]) if mode == POOL_MEAN else (0, 0)
    return global_pool(x, xq[1], mode, out_q[1], mult)


def forward(net, x: np.ndarray, taps: dict = None) -> np.ndarray:
    """Quantized logits (int8) of a quantized Network for one int8 NHWC image [H, W, 3]. With
    taps, every intermediate result is stored under the C library's layer names."""
    def tap(name, v):
        if taps is not None:
            taps[name] = v
        return v
    nq = net.quant
    xq = nq.input
    x = tap("stem", _conv_layer(net.stem, x, xq))
    xq = net.stem.quant.result()
    for i, b in enumerate(net.blocks):
        block_in, block_q = x, xq
        if b.expand is not None:
            x = tap(f"block{i}.expand", _conv_layer(b.expand, x, xq))
            xq = b.expand.quant.result()
        x = tap(f"block{i}.depthwise", _conv_layer(b.depthwise, x, xq))
        xq = b.depthwise.quant.result()
        if b.se is not None:
            bq = b.quant
            s = tap(f"block{i}.se.pool", _pool(x, xq, bq.se_pool_mode, bq.se_pool_output))
            r = _conv_layer(b.se.reduce, s[None, None], bq.se_pool_output)
            tap(f"block{i}.se.reduce", r[0, 0])
            g = _conv_layer(b.se.expand, r, b.se.reduce.quant.result())[0, 0]
            tap(f"block{i}.se.gate", g)
            gq = b.se.expand.quant.result()
            x = tap(f"block{i}.se.scaled",
                    mul(x, xq[1], g, gq[1], mul_params(xq[0], gq[0], bq.se_mul_output[0]),
                        bq.se_mul_output[1]))
            xq = bq.se_mul_output
        x = tap(f"block{i}.project", _conv_layer(b.project, x, xq))
        xq = b.project.quant.result()
        if b.residual:
            oq = b.quant.residual_output
            x = tap(f"block{i}.residual", add(x, xq[1], block_in, block_q[1],
                                              add_params(xq[0], block_q[0], oq[0]), oq[1]))
            xq = oq
    x = tap("last_conv", _conv_layer(net.last_conv, x, xq))
    xq = net.last_conv.quant.result()
    v = tap("pool", _pool(x, xq, nq.pool_mode, nq.pool_output))
    xq = nq.pool_output
    for i, h in enumerate(net.head):
        v = _conv_layer(h, v[None, None], xq)[0, 0]
        xq = h.quant.result()
        tap(f"head.fc{i}", v)
    return v
