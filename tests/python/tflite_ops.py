"""Evaluates single ops of a quantized TFLite graph with the integer mirror (mnv3.convert.quant)
from the interpreter's own input tensors, so each op's arithmetic is checked in isolation.
Shared by the tests; needs the tflite flatbuffer package (as tools/import_tflite.py does)."""
from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "python"))

from mnv3.convert import quant as q  # noqa: E402
from mnv3.convert.import_tflite import Graph  # noqa: E402

_FUSED = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


def to_i8(t: np.ndarray, typ: int, tfl) -> np.ndarray:
    """A uint8 tensor as the int8 tensor x - 128 (int8 unchanged)."""
    if typ == tfl.TensorType.UINT8:
        return (t.astype(np.int16) - 128).astype(np.int8)
    return t.astype(np.int8)


class OpMirror:
    def __init__(self, graph: Graph, tensors: dict):
        self.g = graph
        self.t = tensors  # tensor index -> numpy value as the interpreter kept it

    def qp(self, t: int):
        scale, zp, _ = self.g.quant(t)
        shift = 128 if self.g.ttype(t) == self.g.tfl.TensorType.UINT8 else 0
        return scale, zp - shift

    def val(self, t: int) -> np.ndarray:
        v = self.t.get(t)
        if v is None:
            raw = self.g.raw(t)
            dt = "u1" if self.g.ttype(t) == self.g.tfl.TensorType.UINT8 else "i1"
            v = np.frombuffer(raw.tobytes(), dt).reshape(self.g.shape(t) or ())
        return to_i8(np.asarray(v), self.g.ttype(t), self.g.tfl)

    def eval(self, i: int):
        """The mirror's int8 output of op i, or None for ops without arithmetic."""
        kind = self.g.ops[i][0]
        fn = getattr(self, "op_" + kind.lower(), None)
        if fn is None:
            return None
        return fn(i)

    def _conv(self, i: int, depthwise: bool):
        g = self.g
        x_t, w_t, b_t = g.op_inputs(i)[:3]
        out = g.op_output(i)
        opts = g.options(i, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        xs, xzp = self.qp(x_t)
        ws, wzp = self.qp(w_t)
        os_, ozp = self.qp(out)
        x = self.val(x_t)[0]
        w = self.val(w_t)
        bias = np.frombuffer(g.raw(b_t).tobytes(), "<i4")
        k = w.shape[1]
        stride = opts.StrideH()
        if opts.Padding() == 0:
            t, b_ = q.same_padding(x.shape[0], k, stride)
            l, r = q.same_padding(x.shape[1], k, stride)
        else:
            t = l = b_ = r = 0
        per_channel = ws.size > 1
        mode = q.MULT_DOUBLE if per_channel else q.MULT_FLOAT_PRODUCT
        co = w.shape[-1] if depthwise else w.shape[0]
        ws = np.broadcast_to(ws, (co,))
        mults = [q.quantize_multiplier(q.conv_multiplier(xs[0], s, os_[0], mode)) for s in ws]
        m = np.array([a for a, _ in mults])
        e = np.array([b for _, b in mults])
        acc = q.conv_acc(x, int(xzp[0]), w if not depthwise else w.reshape(k, k, -1),
                         int(wzp[0]), bias, k, stride, (t, l, b_, r), depthwise)
        lo, hi = q.activation_range(_FUSED[opts.FusedActivationFunction()], os_[0], int(ozp[0]))
        return q.conv_output(acc, m, e, int(ozp[0]), lo, hi)[None]

    def op_conv_2d(self, i):
        return self._conv(i, False)

    def op_depthwise_conv_2d(self, i):
        return self._conv(i, True)

    def op_hard_swish(self, i):
        x_t, out = self.g.op_inputs(i)[0], self.g.op_output(i)
        xs, xzp = self.qp(x_t)
        os_, ozp = self.qp(out)
        table = q.hard_swish_table(xs[0], int(xzp[0]), os_[0], int(ozp[0]))
        return table[self.val(x_t).astype(np.int64) + 128]

    def _pool(self, i, mode):
        x_t, out = self.g.op_inputs(i)[0], self.g.op_output(i)
        xs, xzp = self.qp(x_t)
        os_, ozp = self.qp(out)
        x = self.val(x_t)[0]
        mult = q.pool_multiplier(xs[0], os_[0]) if mode == q.POOL_MEAN else (0, 0)
        return q.global_pool(x, int(xzp[0]), mode, int(ozp[0]), mult).reshape(1, 1, 1, -1)

    def op_average_pool_2d(self, i):
        uint8 = self.g.ttype(self.g.op_output(i)) == self.g.tfl.TensorType.UINT8
        return self._pool(i, q.POOL_AVG_HALF_UP if uint8 else q.POOL_AVG_HALF_AWAY)

    def op_mean(self, i):
        return self._pool(i, q.POOL_MEAN)

    def _binary(self, i, kind):
        g = self.g
        a_t, b_t = g.op_inputs(i)[:2]
        out = g.op_output(i)
        (as_, azp), (bs, bzp), (os_, ozp) = self.qp(a_t), self.qp(b_t), self.qp(out)
        opts = g.options(i, "AddOptions" if kind == "add" else "MulOptions")
        lo, hi = q.activation_range(_FUSED[opts.FusedActivationFunction()], os_[0], int(ozp[0]))
        a, b = self.val(a_t), self.val(b_t)
        if kind == "add":
            p = q.add_params(as_[0], bs[0], os_[0])
            return q.add(a, int(azp[0]), b, int(bzp[0]), p, int(ozp[0]), lo, hi)
        p = q.mul_params(as_[0], bs[0], os_[0])
        return q.mul(a, int(azp[0]), b, int(bzp[0]), p, int(ozp[0]), lo, hi)

    def op_add(self, i):
        return self._binary(i, "add")

    def op_mul(self, i):
        return self._binary(i, "mul")

    def op_reshape(self, i):
        return self.val(self.g.op_inputs(i)[0]).reshape(self.g.shape(self.g.op_output(i)))


def run_interpreter(model_path: str, x: np.ndarray):
    """All tensors of one BUILTIN_REF run, by tensor index."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=model_path,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    out = {}
    for d in it.get_tensor_details():
        try:
            out[d["index"]] = it.get_tensor(d["index"]).copy()
        except ValueError:
            pass
    return out
