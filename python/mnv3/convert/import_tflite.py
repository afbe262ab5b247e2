#!/usr/bin/env python3
"""Imports a TFLite MobileNetV3 (float32, or uint8/int8 quantized) into an .mnv3 file.

    python3 tools/import_tflite.py mobilenet_v3_small_1.0_224_uint8.tflite \\
        --labels imagenet_labels_1001.txt -o small_uint8.mnv3

The op graph is mapped back onto stem / blocks (expand, depthwise, squeeze-excite, project,
residual) / last conv / global pool / head. SOFTMAX is dropped: the .mnv3 model outputs the
logits (the TFLite model's output is their softmax). Preprocessing comes from the input
tensor's quantization. Anything that cannot be mapped is refused, naming the op.

A quantized graph (uint8 or full-integer int8) is imported as a quantized model by default:
int8 weights (a uint8 tensor becomes x - 128 with zero point zp - 128, which is exact),
int32 biases, and the scale and zero point of every activation slot, so that the runtime
computes TFLite's reference kernels byte for byte. Elementwise ops of one 8-bit input that
follow a conv (HARD_SWISH; the hard-sigmoid gate ADD(+3)/MUL(1/6), or MUL(1/6) after a RELU6
conv) become a 256-entry table. A graph whose arithmetic cannot be reproduced exactly
(per-channel or int16 activations, an op outside the list) is refused, naming the op and
tensor.

A float16-quantized graph (TensorFlow's `supported_types = [tf.float16]`: FLOAT16 weights
and biases, each read through a DEQUANTIZE op) is imported natively: its weights stay
float16 in the .mnv3 file (format 1.1), its biases become float32 (exactly). Choose with
--weights-dtype (auto: float16 when the graph's weights are, else float32).

With --float, weights are dequantized instead (per-tensor or per-channel; int32 biases with
scale input_scale * weight_scale), and since a quantized model was trained with every
activation inside its tensor's quantized range, each range is kept as a clamp on the
matching slot of the float description."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional, Tuple

import numpy as np

from . import quant as mq
from ._options import WEIGHTS_DTYPE_SPELLINGS, weights_dtype
from .modelfile import (ACT_HARD_SIGMOID, ACT_HARD_SWISH, ACT_NONE, ACT_RELU, ACT_RELU6, ARCH,
                        FLAVOR, MULT_DOUBLE, MULT_FLOAT_PRODUCT, NHWC, PAD_EXPLICIT, PAD_SAME,
                        POOL_AVG_HALF_AWAY, POOL_AVG_HALF_UP, POOL_MEAN, RGB, UNBOUNDED, Block,
                        BlockQuant, Clamp, Conv, ConvQuant, NetQuant, Network, Preprocess, QParam,
                        SqueezeExcite, with_weight_dtype, write_file)


class TfliteImportError(ValueError):
    """The TFLite graph cannot be mapped onto an .mnv3 description."""

_FUSED = {0: ACT_NONE, 1: ACT_RELU, 3: ACT_RELU6}
_FUSED_RANGE = {0: "none", 1: "relu", 3: "relu6"}
_FUSED_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PASSTHROUGH = ("QUANTIZE", "DEQUANTIZE")


def _intersect(a: Clamp, b: Clamp) -> Clamp:
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    if lo > hi:  # disjoint ranges: keep the later one
        return b
    return (lo, hi)


class Graph:
    def __init__(self, data: bytes):
        import tflite
        self.tfl = tflite
        self.data = data
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise TfliteImportError(f"model has {self.model.SubgraphsLength()} subgraphs, expected 1")
        self.g = self.model.Subgraphs(0)
        names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items()
                 if not k.startswith("_")}
        self.ops = []
        for i in range(self.g.OperatorsLength()):
            op = self.g.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            bc = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            self.ops.append((names.get(bc, f"BUILTIN_{bc}"), op))
        self.consumers = {}
        self.producer = {}
        for i, (_, op) in enumerate(self.ops):
            for t in op.InputsAsNumpy():
                if t >= 0:
                    self.consumers.setdefault(int(t), []).append(i)
            for t in op.OutputsAsNumpy():
                self.producer[int(t)] = i
        self.half_constants = 0  # FLOAT16 constants read through DEQUANTIZE
        self.inputs = [int(t) for t in self.g.InputsAsNumpy()]
        self.outputs = [int(t) for t in self.g.OutputsAsNumpy()]
        self.visited = set()
        self.data_input = {}  # conv op -> its data input, where a PAD was folded into it
        self.conv_pads = {}   # conv op -> (top, left, bottom, right) of that PAD
        self.fold_pads()

    def fold_pads(self):
        """A zero PAD of H and W feeding one VALID convolution (how converters write
        symmetric padding that SAME does not express) becomes that conv's explicit pads."""
        for i, (kind, op) in enumerate(self.ops):
            if kind != "PAD":
                continue
            ins = [int(t) for t in op.InputsAsNumpy()]
            out = int(op.OutputsAsNumpy()[0])
            uses = self.consumers.get(out, [])
            if len(ins) != 2 or len(uses) != 1:
                continue
            c = uses[0]
            if self.ops[c][0] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                continue
            opts = self.options(c, "Conv2DOptions" if self.ops[c][0] == "CONV_2D"
                                else "DepthwiseConv2DOptions")
            raw = self.raw(ins[1])
            if opts.Padding() != 1 or raw is None:  # 1: VALID
                continue
            dt = "<i8" if self.ttype(ins[1]) == self.tfl.TensorType.INT64 else "<i4"
            pads = np.frombuffer(raw.tobytes(), dt).reshape(-1)
            if pads.size != 8 or pads[0] or pads[1] or pads[6] or pads[7]:
                continue
            self.conv_pads[c] = (int(pads[2]), int(pads[4]), int(pads[3]), int(pads[5]))
            self.data_input[c] = ins[0]
            self.consumers[ins[0]] = [c if u == i else u for u in self.consumers[ins[0]]]
            self.visited.add(i)

    # Tensors ------------------------------------------------------------------------------
    def tensor(self, t: int):
        return self.g.Tensors(t)

    def shape(self, t: int) -> Tuple[int, ...]:
        return tuple(int(v) for v in self.tensor(t).ShapeAsNumpy())

    def ttype(self, t: int) -> int:
        return self.tensor(t).Type()

    def quant(self, t: int):
        q = self.tensor(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), int)
        return (np.asarray(q.ScaleAsNumpy(), np.float64), np.asarray(zp, np.int64),
                q.QuantizedDimension())

    def raw(self, t: int) -> Optional[np.ndarray]:
        buf = self.model.Buffers(self.tensor(t).Buffer())
        if buf is None:
            return None
        off = buf.Offset() if hasattr(buf, "Offset") else 0
        if off > 1:
            return np.frombuffer(self.data, np.uint8, count=buf.Size(), offset=off)
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy()

    def constant(self, t: int) -> Optional[np.ndarray]:
        """Dequantized float64 value of a constant tensor, None if not constant."""
        tt = self.tfl.TensorType
        raw = self.raw(t)
        if raw is None:
            return self.dequantized_constant(t)
        typ = self.ttype(t)
        dt = {tt.FLOAT32: "<f4", tt.FLOAT16: "<f2", tt.INT32: "<i4", tt.UINT8: "u1",
              tt.INT8: "i1", tt.INT64: "<i8"}.get(typ)
        if dt is None:
            raise TfliteImportError(f"tensor {t} ({self.name(t)}): type {typ} not supported")
        shape = self.shape(t)
        v = np.frombuffer(raw.tobytes(), dtype=dt).astype(np.float64).reshape(shape or ())
        if typ in (tt.FLOAT32, tt.FLOAT16):
            return v
        q = self.quant(t)
        if q is None:
            return v
        scale, zp, dim = q
        if scale.size > 1:
            bshape = [1] * v.ndim
            bshape[dim] = scale.size
            return (v - zp.reshape(bshape)) * scale.reshape(bshape)
        return (v - zp[0]) * scale[0]

    def dequantized_constant(self, t: int) -> Optional[np.ndarray]:
        """A float16-quantized graph's weight: the output of a DEQUANTIZE op whose input is
        a FLOAT16 constant (None for anything else)."""
        i = self.producer.get(t)
        if i is None or self.ops[i][0] != "DEQUANTIZE":
            return None
        src = self.op_inputs(i)[0]
        if self.ttype(src) != self.tfl.TensorType.FLOAT16 or self.raw(src) is None:
            return None
        self.visited.add(i)
        self.half_constants += 1
        return self.constant(src)

    def is_uint8(self, t: int) -> bool:
        return self.ttype(t) == self.tfl.TensorType.UINT8

    def qparam(self, t: int, where: str) -> QParam:
        """Scale and zero point of an 8-bit activation tensor, in the int8 convention (a uint8
        tensor is x - 128 with zero point zp - 128). Refuses what the runtime cannot
        reproduce exactly."""
        tt = self.tfl.TensorType
        typ = self.ttype(t)
        if typ not in (tt.UINT8, tt.INT8):
            kind = {tt.INT16: "int16", tt.FLOAT32: "float32"}.get(typ, f"type {typ}")
            raise TfliteImportError(f"{where}: tensor {t} ('{self.name(t)}') holds {kind} "
                                    "activations; only 8-bit ones can be run exactly")
        q = self.quant(t)
        if q is None:
            raise TfliteImportError(f"{where}: tensor {t} ('{self.name(t)}') has no "
                                    "quantization parameters")
        scale, zp, _ = q
        if scale.size != 1:
            raise TfliteImportError(f"{where}: tensor {t} ('{self.name(t)}') is quantized per "
                                    f"channel ({scale.size} scales); activations must be "
                                    "quantized per tensor")
        return float(np.float32(scale[0])), int(zp[0]) - (128 if self.is_uint8(t) else 0)

    def int8_constant(self, t: int) -> np.ndarray:
        """Raw bytes of a constant 8-bit tensor in the int8 convention."""
        raw = self.raw(t)
        if self.is_uint8(t):
            return np.frombuffer(raw.tobytes(), np.uint8).astype(np.int16) - 128
        return np.frombuffer(raw.tobytes(), np.int8).astype(np.int16)

    def name(self, t: int) -> str:
        n = self.tensor(t).Name()
        return n.decode("utf-8", "replace") if n else f"#{t}"

    def qrange(self, t: int) -> Clamp:
        """The real interval a quantized activation tensor can hold (unbounded if float)."""
        tt = self.tfl.TensorType
        q = self.quant(t)
        typ = self.ttype(t)
        if q is None or typ not in (tt.UINT8, tt.INT8, tt.INT16):
            return UNBOUNDED
        scale, zp, _ = q
        lo, hi = {tt.UINT8: (0, 255), tt.INT8: (-128, 127), tt.INT16: (-32768, 32767)}[typ]
        return (float(np.float32(scale[0] * (lo - zp[0]))),
                float(np.float32(scale[0] * (hi - zp[0]))))

    # Ops ----------------------------------------------------------------------------------
    def op_inputs(self, i: int) -> List[int]:
        ins = [int(t) for t in self.ops[i][1].InputsAsNumpy()]
        if i in self.data_input:
            ins[0] = self.data_input[i]
        return ins

    def op_output(self, i: int) -> int:
        return int(self.ops[i][1].OutputsAsNumpy()[0])

    def options(self, i: int, cls_name: str):
        table = self.ops[i][1].BuiltinOptions()
        cls = getattr(self.tfl, cls_name)
        o = cls()
        if table is not None:
            o.Init(table.Bytes, table.Pos)
        return o

    def describe_op(self, i: int) -> str:
        return f"op {i} ({self.ops[i][0]})"

    def refuse(self, i: int, why: str):
        raise TfliteImportError(f"cannot map {self.describe_op(i)}: {why}")

    def uses(self, t: int) -> List[int]:
        return [i for i in self.consumers.get(t, [])]


class Importer:
    def __init__(self, graph: Graph, quantized: bool = False):
        self.g = graph
        self.q = quantized

    # Helpers ------------------------------------------------------------------------------
    def single_use(self, t: int, what: str) -> int:
        uses = self.g.uses(t)
        if len(uses) != 1:
            prod = self.g.producer.get(t)
            where = self.g.describe_op(prod) if prod is not None else f"tensor {t}"
            raise TfliteImportError(f"{where}: output '{self.g.name(t)}' feeds {len(uses)} ops "
                               f"where {what} expects one")
        return uses[0]

    def skip_passthrough(self, t: int, setter: Optional[Callable[[Clamp], None]]) -> int:
        """Follows QUANTIZE/DEQUANTIZE ops; a requantization's range joins the clamp."""
        while True:
            uses = self.g.uses(t)
            if len(uses) == 1 and self.g.ops[uses[0]][0] in _PASSTHROUGH:
                i = uses[0]
                self.g.visited.add(i)
                t = self.g.op_output(i)
                if setter is not None:
                    setter(self.g.qrange(t))
                continue
            return t

    def fused(self, i: int, opts) -> int:
        f = opts.FusedActivationFunction()
        if f not in _FUSED:
            self.g.refuse(i, f"fused activation {_FUSED_NAMES.get(f, f)} is not supported")
        return _FUSED[f]

    def scalar_constant(self, t: int) -> Optional[float]:
        v = self.g.constant(t)
        if v is None or v.size != 1:
            return None
        return float(v.reshape(-1)[0])

    # Layers -------------------------------------------------------------------------------
    def conv(self, i: int, x: int, one_by_one: bool = False) -> Tuple[Conv, int]:
        """Maps CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op i reading tensor x; applies
        the activation that follows; returns the conv and the tensor it finally produces."""
        g = self.g
        kind = g.ops[i][0]
        ins = g.op_inputs(i)
        if ins[0] != x:
            g.refuse(i, "its data input is not the running activation")
        w = g.constant(ins[1])
        if w is None:
            g.refuse(i, "weights are not constant")
        b = g.constant(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
        if b is None and len(ins) > 2 and ins[2] >= 0:
            g.refuse(i, "bias is not constant")
        # int32 biases without their own scale: input_scale * weight_scale.
        if b is not None and g.quant(ins[2]) is None and g.ttype(ins[2]) == g.tfl.TensorType.INT32:
            qi, qw = g.quant(ins[0]), g.quant(ins[1])
            if qi is None or qw is None:
                g.refuse(i, "int32 bias without quantization parameters")
            b = b * qi[0][0] * qw[0]
        if kind == "CONV_2D":
            o = g.options(i, "Conv2DOptions")
            if o.DilationHFactor() > 1 or o.DilationWFactor() > 1:
                g.refuse(i, "dilated convolution")
            if o.StrideH() != o.StrideW():
                g.refuse(i, f"stride {o.StrideH()}x{o.StrideW()} is not square")
            out_c, kh, kw, in_c = w.shape
            if kh != kw:
                g.refuse(i, f"kernel {kh}x{kw} is not square")
            conv = Conv(in_c, out_c, kh, o.StrideH())
            conv.weight = (w.reshape(out_c, in_c) if kh == 1 else w).astype(np.float32)
            padding = o.Padding()
        elif kind == "DEPTHWISE_CONV_2D":
            o = g.options(i, "DepthwiseConv2DOptions")
            if o.DilationHFactor() > 1 or o.DilationWFactor() > 1:
                g.refuse(i, "dilated convolution")
            if o.StrideH() != o.StrideW():
                g.refuse(i, f"stride {o.StrideH()}x{o.StrideW()} is not square")
            _, kh, kw, ch = w.shape
            in_c = g.shape(ins[0])[-1]
            if ch != in_c or kh != kw:
                g.refuse(i, f"depth multiplier {ch // max(in_c, 1)} or kernel {kh}x{kw} "
                            "not supported")
            conv = Conv(ch, ch, kh, o.StrideH(), depthwise=True)
            conv.weight = w.reshape(kh, kw, ch).astype(np.float32)
            padding = o.Padding()
        elif kind == "FULLY_CONNECTED":
            o = g.options(i, "FullyConnectedOptions")
            out_c, in_c = w.shape
            conv = Conv(in_c, out_c)
            conv.weight = w.astype(np.float32)
            padding = 1
        else:
            g.refuse(i, "expected a convolution")
        if one_by_one and (conv.kernel != 1 or conv.stride != 1 or conv.depthwise):
            g.refuse(i, "expected a 1x1, stride-1 convolution here")
        if conv.kernel > 1:
            if padding == 0:  # SAME
                conv.padding_mode = PAD_SAME
            else:
                conv.padding_mode = PAD_EXPLICIT
                conv.pads = g.conv_pads.get(i, (0, 0, 0, 0))
                if max(conv.pads) >= conv.kernel:
                    g.refuse(i, f"padding {conv.pads} of a {conv.kernel}x{conv.kernel} kernel")
        elif i in g.conv_pads:
            g.refuse(i, "a padded 1x1 convolution")
        if b is not None:
            conv.bias = b.reshape(-1).astype(np.float32)
        g.visited.add(i)
        act = self.fused(i, o)
        out = g.op_output(i)
        if self.q:
            self.quantize_conv(i, conv, ins, out, o.FusedActivationFunction())
            conv.activation = act
            return self.q_activation(conv, out)
        if act == ACT_RELU6 and conv.bias is not None:
            sixth = self.relu6_sixth(out)
            if sixth is not None:
                # relu6(x + b) / 6 is the hard-sigmoid of x + (b - 3)
                conv.bias = (conv.bias.astype(np.float64) - 3.0).astype(np.float32)
                conv.activation = ACT_HARD_SIGMOID
                conv.post_clamp = g.qrange(sixth)
                return conv, self.skip_passthrough(sixth, self.post_setter(conv))
        if act != ACT_NONE:
            conv.activation = act
            conv.post_clamp = g.qrange(out)
            out = self.skip_passthrough(out, self.post_setter(conv))
            return self.sixth_of_relu6(conv, out) if act == ACT_RELU6 else (conv, out)
        out = self.skip_passthrough(out, self.post_setter(conv))
        conv.post_clamp = _intersect(g.qrange(out), conv.post_clamp)
        return self.activation(conv, out)

    def quantize_conv(self, i: int, conv: Conv, ins: List[int], out: int, fused: int) -> None:
        """Replaces the dequantized weights with the raw integers and the quantization."""
        g = self.g
        where = g.describe_op(i)
        xs, _ = g.qparam(ins[0], where)
        os_, ozp = g.qparam(out, where)
        wt = ins[1]
        tt = g.tfl.TensorType
        if g.ttype(wt) not in (tt.UINT8, tt.INT8):
            g.refuse(i, f"weights (tensor {wt}) are not 8-bit")
        wq = g.quant(wt)
        if wq is None:
            g.refuse(i, f"weights (tensor {wt}) have no quantization parameters")
        wscale, wzp, _ = wq
        if np.unique(wzp).size != 1:
            g.refuse(i, f"weights (tensor {wt}) have a zero point per channel")
        shift = 128 if g.is_uint8(wt) else 0
        w = g.int8_constant(wt).astype(np.int8)
        conv.weight = w.reshape(conv.weight_shape())
        co = conv.out_channels
        wscale = np.broadcast_to(np.asarray(wscale, np.float32), (co,)).copy()
        bias_scale = None
        conv.bias = None
        if len(ins) > 2 and ins[2] >= 0:
            bt = ins[2]
            if g.ttype(bt) != tt.INT32:
                g.refuse(i, f"bias (tensor {bt}) is not int32")
            conv.bias = np.frombuffer(g.raw(bt).tobytes(), "<i4").astype(np.int32)
            bq = g.quant(bt)
            if bq is None:
                bias_scale = (np.float32(xs) * wscale).astype(np.float32)
            else:
                bias_scale = np.broadcast_to(np.asarray(bq[0], np.float32), (co,)).copy()
        conv.pre_clamp = conv.post_clamp = UNBOUNDED
        conv.quant = ConvQuant(
            (os_, ozp), wscale, bias_scale, int(wzp.reshape(-1)[0]) - shift,
            mq.activation_range(_FUSED_RANGE[fused], os_, ozp),
            MULT_FLOAT_PRODUCT if g.is_uint8(ins[0]) else MULT_DOUBLE)

    def q_activation(self, conv: Conv, t: int) -> Tuple[Conv, int]:
        """An elementwise op of one 8-bit input after a quantized conv becomes its table:
        HARD_SWISH, ADD(+3)[RELU6]/MUL(1/6), or MUL(1/6) after a RELU6 conv."""
        g = self.g
        uses = g.uses(t)
        if len(uses) != 1:
            return conv, t
        i = uses[0]
        kind = g.ops[i][0]
        where = g.describe_op(i)
        if kind in _PASSTHROUGH:
            g.refuse(i, f"a requantization of tensor {t} ('{g.name(t)}') between layers")
        if kind == "HARD_SWISH":
            out = g.op_output(i)
            xs, xzp = g.qparam(t, where)
            os_, ozp = g.qparam(out, where)
            try:
                table = mq.hard_swish_table(xs, xzp, os_, ozp)
            except mq.QuantError as e:
                g.refuse(i, str(e))
            g.visited.add(i)
            conv.activation = ACT_HARD_SWISH
            conv.quant.table, conv.quant.table_output = table, (os_, ozp)
            return conv, out
        if kind == "ADD":
            hs = self.hard_sigmoid(i, t)
            if hs is None:
                return conv, t
            _, out = hs
            chain = [i, g.uses(g.op_output(i))[0]]
        elif kind == "MUL" and conv.activation == ACT_RELU6:
            if self.one_sixth_mul(t) is None:
                return conv, t
            chain = [i]
            out = g.op_output(i)
        else:
            return conv, t
        x = np.arange(-128, 128, dtype=np.int64)
        cur = t
        for k in chain:
            other = [u for u in g.op_inputs(k) if u != cur][0]
            w = g.describe_op(k)
            (xs, xzp), (cs, czp) = g.qparam(cur, w), g.qparam(other, w)
            nxt = g.op_output(k)
            os_, ozp = g.qparam(nxt, w)
            cv = int(g.int8_constant(other).reshape(-1)[0])
            if g.ops[k][0] == "ADD":
                f = g.options(k, "AddOptions").FusedActivationFunction()
                lo, hi = mq.activation_range(_FUSED_RANGE.get(f, "none"), os_, ozp)
                x = mq.add(x, xzp, cv, czp, mq.add_params(xs, cs, os_), ozp, lo, hi)
            else:
                x = mq.mul(x, xzp, cv, czp, mq.mul_params(xs, cs, os_), ozp)
            cur = nxt
        g.visited.update(chain)
        conv.activation = ACT_HARD_SIGMOID
        conv.quant.table = np.asarray(x, np.int8)
        conv.quant.table_output = g.qparam(out, where)
        return conv, out

    def pool_mode(self, i: int, x: int) -> int:
        g = self.g
        if g.ops[i][0] == "MEAN":
            if g.is_uint8(x):
                g.refuse(i, f"uint8 MEAN of tensor {x} ('{g.name(x)}') is not supported; "
                            "only int8 MEAN is reproduced exactly")
            if not g.options(i, "ReducerOptions").KeepDims():
                g.refuse(i, "MEAN without keep_dims takes another TFLite code path")
            return POOL_MEAN
        if g.qparam(x, g.describe_op(i)) != g.qparam(g.op_output(i), g.describe_op(i)):
            g.refuse(i, f"an average pool that changes the quantization of tensor {x}")
        return POOL_AVG_HALF_UP if g.is_uint8(x) else POOL_AVG_HALF_AWAY

    def one_sixth_mul(self, t: int) -> Optional[int]:
        """The op that multiplies tensor t (its only use) by a constant 1/6, if any."""
        g = self.g
        uses = g.uses(t)
        if len(uses) != 1 or g.ops[uses[0]][0] != "MUL":
            return None
        i = uses[0]
        ins = g.op_inputs(i)
        if len(ins) != 2 or t not in ins:
            return None
        c = self.scalar_constant([u for u in ins if u != t][0] if ins[0] != ins[1] else t)
        if c is None or abs(c - 1.0 / 6.0) > 0.002:
            return None
        if g.options(i, "MulOptions").FusedActivationFunction() != 0:
            g.refuse(i, "fused activation on the hard-sigmoid multiply")
        return i

    def sixth_of_relu6(self, conv: Conv, t: int) -> Tuple[Conv, int]:
        """Keras' hard-sigmoid as the converter writes it: the +3 folded into the bias of a
        RELU6 conv, then MUL by 1/6. relu6(y) / 6 is hard_sigmoid(y - 3): the bias moves
        back by 3."""
        g = self.g
        i = self.one_sixth_mul(t)
        if i is None:
            return conv, t
        g.visited.add(i)
        out = g.op_output(i)
        lo, hi = conv.post_clamp
        conv.bias = (conv.bias if conv.bias is not None else
                     np.zeros(conv.out_channels, np.float32)) - np.float32(3.0)
        conv.pre_clamp = (lo - 3.0, hi - 3.0)
        conv.activation = ACT_HARD_SIGMOID
        conv.post_clamp = g.qrange(out)
        return conv, self.skip_passthrough(out, self.post_setter(conv))

    @staticmethod
    def post_setter(conv: Conv):
        def s(r: Clamp):
            conv.post_clamp = _intersect(conv.post_clamp, r)
        return s

    def activation(self, conv: Conv, t: int) -> Tuple[Conv, int]:
        """A separate activation op (or the ADD/RELU6/MUL hard-sigmoid) after conv."""
        g = self.g
        uses = g.uses(t)
        if len(uses) != 1:
            return conv, t
        i = uses[0]
        kind = g.ops[i][0]
        acts = {"HARD_SWISH": ACT_HARD_SWISH, "RELU": ACT_RELU, "RELU6": ACT_RELU6}
        if kind in acts:
            conv.pre_clamp, conv.post_clamp = conv.post_clamp, UNBOUNDED
            conv.activation = acts[kind]
            g.visited.add(i)
            out = g.op_output(i)
            conv.post_clamp = g.qrange(out)
            return conv, self.skip_passthrough(out, self.post_setter(conv))
        if kind == "ADD":
            hs = self.hard_sigmoid(i, t)
            if hs is not None:
                post, out = hs
                conv.pre_clamp, conv.post_clamp = conv.post_clamp, post
                conv.activation = ACT_HARD_SIGMOID
                return conv, self.skip_passthrough(out, self.post_setter(conv))
        return conv, t

    def relu6_sixth(self, t: int) -> Optional[int]:
        """The output of a float MUL(t, 1/6) that is t's only use, or None."""
        g = self.g
        uses = g.uses(t)
        if len(uses) != 1 or g.ops[uses[0]][0] != "MUL" or g.ttype(t) != g.tfl.TensorType.FLOAT32:
            return None
        m = uses[0]
        other = [u for u in g.op_inputs(m) if u != t]
        c = self.scalar_constant(other[0]) if len(other) == 1 else None
        if c is None or abs(c * 6.0 - 1.0) > 1e-6:
            return None
        if g.options(m, "MulOptions").FusedActivationFunction() != 0:
            return None
        g.visited.add(m)
        return g.op_output(m)

    def hard_sigmoid(self, i: int, t: int) -> Optional[Tuple[Clamp, int]]:
        """ADD(x, 3) [fused RELU6 or a RELU6 op] then MUL(., 1/6): relu6(x + 3) / 6."""
        g = self.g
        ins = g.op_inputs(i)
        other = [u for u in ins if u != t]
        if len(other) != 1:
            return None
        c = self.scalar_constant(other[0])
        if c is None or abs(c - 3.0) > 0.05:
            return None
        opts = g.options(i, "AddOptions")
        f = opts.FusedActivationFunction()
        add_out = g.op_output(i)
        add_range = g.qrange(add_out)
        chain = [i]
        if f == 3:
            add_range = _intersect(add_range, (0.0, 6.0))
        elif f == 0:
            uses = g.uses(add_out)
            if len(uses) == 1 and g.ops[uses[0]][0] == "RELU6":
                chain.append(uses[0])
                add_out = g.op_output(uses[0])
                add_range = _intersect(g.qrange(add_out), (0.0, 6.0))
            elif add_range[0] >= -1e-6 and add_range[1] <= 6.0 + 0.02:
                # Quantized graphs often drop the RELU6: the output range [0, 6] is the clamp.
                add_range = _intersect(add_range, (0.0, 6.0))
            else:
                return None
        else:
            return None
        uses = g.uses(add_out)
        if len(uses) != 1 or g.ops[uses[0]][0] != "MUL":
            return None
        m = uses[0]
        mins = g.op_inputs(m)
        other = [u for u in mins if u != add_out]
        if len(other) != 1:
            return None
        c = self.scalar_constant(other[0])
        if c is None or abs(c - 1.0 / 6.0) > 0.002:
            return None
        if g.options(m, "MulOptions").FusedActivationFunction() != 0:
            g.refuse(m, "fused activation on the hard-sigmoid multiply")
        chain.append(m)
        g.visited.update(chain)
        out = g.op_output(m)
        lo, hi = add_range
        post = _intersect((max(lo, 0.0) / 6.0, min(hi, 6.0) / 6.0), g.qrange(out))
        return post, out

    def global_pool(self, i: int, x: int) -> int:
        """AVERAGE_POOL_2D over the whole map (or MEAN over H, W): returns the output."""
        g = self.g
        kind = g.ops[i][0]
        shape = g.shape(x)
        if kind == "AVERAGE_POOL_2D":
            o = g.options(i, "Pool2DOptions")
            if o.FusedActivationFunction() != 0:
                g.refuse(i, "fused activation on the pool")
            if (o.FilterHeight(), o.FilterWidth()) != tuple(shape[1:3]):
                g.refuse(i, f"pool {o.FilterHeight()}x{o.FilterWidth()} over a "
                            f"{shape[1]}x{shape[2]} map is not global")
        elif kind == "MEAN":
            axes = g.constant(g.op_inputs(i)[1])
            if axes is None or sorted(int(a) % 4 for a in axes.reshape(-1)) != [1, 2]:
                g.refuse(i, "MEAN is not over height and width")
        else:
            g.refuse(i, "expected a global average pool")
        g.visited.add(i)
        return g.op_output(i)

    # Network ------------------------------------------------------------------------------
    def run(self) -> Network:
        g = self.g
        if len(g.inputs) != 1:
            raise TfliteImportError(f"model has {len(g.inputs)} inputs, expected 1")
        inp = g.inputs[0]
        shape = g.shape(inp)
        if len(shape) != 4 or shape[3] != 3:
            raise TfliteImportError(f"input shape {shape} is not N x H x W x 3")
        preprocess = self.preprocess(inp, shape)
        x = self.skip_passthrough(inp, None)

        i = self.single_use(x, "the stem")
        if g.ops[i][0] != "CONV_2D":
            g.refuse(i, "the first layer must be a CONV_2D (the stem)")
        stem, x = self.conv(i, x)
        # The TFLite tensor behind each layer's result, by the C library's layer names (for
        # tests that compare layer by layer).
        self.tensors = {"stem": x}

        blocks: List[Block] = []
        last_conv = None
        while True:
            block_in = x
            uses = g.uses(x)
            convs = [u for u in uses if g.ops[u][0] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
            if len(convs) != 1:
                raise TfliteImportError(f"tensor '{g.name(x)}' does not lead to exactly one "
                                   f"convolution: {[g.describe_op(u) for u in uses]}")
            i = convs[0]
            expand = None
            if g.ops[i][0] == "CONV_2D":
                c, y = self.conv(i, x, one_by_one=True)
                nxt = g.uses(y)
                kinds = [g.ops[u][0] for u in nxt]
                if kinds == ["DEPTHWISE_CONV_2D"]:
                    expand, x, i = c, y, nxt[0]
                    self.tensors[f"block{len(blocks)}.expand"] = y
                elif len(kinds) == 1 and kinds[0] in ("AVERAGE_POOL_2D", "MEAN"):
                    last_conv, x = c, y
                    self.tensors["last_conv"] = y
                    break
                else:
                    raise TfliteImportError(f"after {g.describe_op(i)}: expected a depthwise conv "
                                       f"or the global pool, found {kinds}")
            dw, x = self.conv(i, x)
            self.tensors[f"block{len(blocks)}.depthwise"] = x
            se = None
            uses = g.uses(x)
            pools = [u for u in uses if g.ops[u][0] in ("AVERAGE_POOL_2D", "MEAN")]
            if pools:
                se, x = self.squeeze_excite(pools[0], x)
            i = self.single_use(x, "the projection")
            proj, x = self.conv(i, x, one_by_one=True)
            self.tensors[f"block{len(blocks)}.project"] = x
            if proj.activation != ACT_NONE:
                g.refuse(i, "the projection conv has an activation")
            block = Block(dw, proj, expand, se)
            if self.q and se is not None:
                block.quant = self.se_quant
            uses = g.uses(x)
            if len(uses) == 1 and g.ops[uses[0]][0] == "ADD" and block_in in g.op_inputs(uses[0]):
                a = uses[0]
                if g.options(a, "AddOptions").FusedActivationFunction() != 0:
                    g.refuse(a, "fused activation on the residual add")
                g.visited.add(a)
                block.residual = True
                x = g.op_output(a)
                self.tensors[f"block{len(blocks)}.residual"] = x
                block.residual_clamp = g.qrange(x)
                if self.q:
                    block.residual_clamp = UNBOUNDED
                    block.quant = block.quant or BlockQuant()
                    block.quant.residual_output = g.qparam(x, g.describe_op(a))

                def rs(r, block=block):
                    block.residual_clamp = _intersect(block.residual_clamp, r)
                x = self.skip_passthrough(x, rs)
            blocks.append(block)

        i = self.single_use(x, "the global pool")
        pool_in = x
        x = self.global_pool(i, x)
        self.tensors["pool"] = x
        net_pool = [g.qrange(x)]
        net_quant = None
        if self.q:
            net_pool = [UNBOUNDED]
            net_quant = NetQuant(g.qparam(inp, "the network input"), self.pool_mode(i, pool_in),
                                 g.qparam(x, g.describe_op(i)), 1 if g.is_uint8(inp) else 0)

        def ps(r):
            if not self.q:
                net_pool[0] = _intersect(net_pool[0], r)
        x = self.skip_passthrough(x, ps)

        head: List[Conv] = []
        while x not in g.outputs:
            uses = self.skip_shape_of(x)
            if len(uses) != 1:
                raise TfliteImportError(f"tensor '{g.name(x)}' feeds {len(uses)} ops in the head")
            i = uses[0]
            kind = g.ops[i][0]
            setter = self.post_setter(head[-1]) if head else ps
            if kind in ("CONV_2D", "FULLY_CONNECTED"):
                c, x = self.conv(i, x, one_by_one=True)
                self.tensors[f"head.fc{len(head)}"] = x
                head.append(c)
                continue
            if self.q and kind in _PASSTHROUGH:
                g.refuse(i, f"a requantization of tensor {x} ('{g.name(x)}') in the head")
            if kind in ("RESHAPE", "SQUEEZE") + _PASSTHROUGH:
                g.visited.add(i)
                if self.q and g.qparam(g.op_output(i), g.describe_op(i)) != g.qparam(
                        x, g.describe_op(i)):
                    g.refuse(i, f"a reshape that changes the quantization of tensor {x}")
                x = g.op_output(i)
                if not self.q:
                    setter(g.qrange(x))
            elif kind in ("AVERAGE_POOL_2D", "MEAN") and all(
                    d == 1 for d in g.shape(x)[1:3]):
                if self.q and (kind == "MEAN" or g.qparam(g.op_output(i), g.describe_op(i)) !=
                               g.qparam(x, g.describe_op(i))):
                    g.refuse(i, f"a pool of a 1x1 map that is not the identity on tensor {x}")
                g.visited.add(i)  # pooling a 1x1 map is the identity
                x = g.op_output(i)
                if not self.q:
                    setter(g.qrange(x))
            elif kind == "SOFTMAX":
                g.visited.add(i)
                x = g.op_output(i)
                x = self.skip_passthrough(x, None)
                if x not in g.outputs:
                    g.refuse(i, "SOFTMAX is not the last op")
                break
            else:
                g.refuse(i, "not expected in the classifier head")
        if not head:
            raise TfliteImportError("no classifier layer after the global pool")
        if len(head) > 4:
            raise TfliteImportError(f"{len(head)} head layers, at most 4 are supported")
        left = [k for k in range(len(g.ops)) if k not in g.visited]
        if left:
            g.refuse(left[0], "left over after mapping the network "
                              f"({len(left)} ops unused)")
        arch = ARCH["custom"]
        if len(blocks) == 11:
            arch = ARCH["small"]
        elif len(blocks) == 15:
            arch = ARCH["large"]
        return Network(stem, blocks, last_conv, head, net_pool[0], arch, FLAVOR["tflite"], 3,
                       preprocess, quant=net_quant)

    def skip_shape_of(self, x: int) -> List[int]:
        """The uses of x apart from a SHAPE / STRIDED_SLICE / PACK chain that only computes
        the target shape of a RESHAPE of x (Keras' flatten)."""
        g = self.g
        uses = g.uses(x)
        rest = []
        for u in uses:
            if g.ops[u][0] != "SHAPE":
                rest.append(u)
                continue
            chain, t = [u], g.op_output(u)
            while True:
                nxt = g.uses(t)
                if len(nxt) != 1:
                    break
                k = nxt[0]
                if g.ops[k][0] in ("STRIDED_SLICE", "PACK"):
                    chain.append(k)
                    t = g.op_output(k)
                    continue
                if g.ops[k][0] == "RESHAPE" and g.op_inputs(k)[:2] == [x, t]:
                    g.visited.update(chain)
                    chain = None
                break
            if chain is not None:
                rest.append(u)
        return rest

    def squeeze_excite(self, pool_op: int, x: int) -> Tuple[SqueezeExcite, int]:
        g = self.g
        uses = g.uses(x)
        muls = [u for u in uses if g.ops[u][0] == "MUL"]
        if len(uses) != 2 or len(muls) != 1:
            g.refuse(pool_op, "squeeze-excite needs the pool and one MUL on the same input")
        p = self.global_pool(pool_op, x)
        holder = {"sq": g.qrange(p)}
        if self.q:
            self.se_quant = BlockQuant(self.pool_mode(pool_op, x),
                                       g.qparam(p, g.describe_op(pool_op)))

        def sq_set(r):
            holder["sq"] = _intersect(holder["sq"], r)
        p = self.skip_passthrough(p, sq_set)
        i = self.single_use(p, "the squeeze-excite reduce conv")
        red, r = self.conv(i, p, one_by_one=True)
        i = self.single_use(r, "the squeeze-excite expand conv")
        exp, gate = self.conv(i, r, one_by_one=True)
        b = sum(1 for k in self.tensors if k.endswith(".depthwise")) - 1
        self.tensors.update({f"block{b}.se.pool": p, f"block{b}.se.reduce": r,
                             f"block{b}.se.gate": gate})
        if exp.activation != ACT_HARD_SIGMOID:
            g.refuse(i, "squeeze-excite gate is not a hard-sigmoid (relu6(x + 3) / 6)")
        m = muls[0]
        if set(g.op_inputs(m)) != {x, gate}:
            g.refuse(m, "the squeeze-excite multiply does not combine input and gate")
        if g.options(m, "MulOptions").FusedActivationFunction() != 0:
            g.refuse(m, "fused activation on the squeeze-excite multiply")
        g.visited.add(m)
        out = g.op_output(m)
        self.tensors[f"block{b}.se.scaled"] = out
        se = SqueezeExcite(red, exp, holder["sq"], g.qrange(out))
        if self.q:
            se.squeeze_clamp = se.scale_clamp = UNBOUNDED
            self.se_quant.se_mul_output = g.qparam(out, g.describe_op(m))
            return se, out

        def sc_set(r, se=se):
            se.scale_clamp = _intersect(se.scale_clamp, r)
        return se, self.skip_passthrough(out, sc_set)

    def preprocess(self, inp: int, shape) -> Preprocess:
        g = self.g
        tt = g.tfl.TensorType
        typ = g.ttype(inp)
        q = g.quant(inp)
        h, w = shape[1], shape[2]
        if typ in (tt.UINT8, tt.INT8) and q is not None:
            scale, zp = float(q[0][0]), float(q[1][0])
            if typ == tt.INT8 and zp == -1 and abs(scale * 127.5 - 1) < 1e-6:
                # TensorFlow's converter quantizes Keras' x / 127.5 - 1 this way: keep that
                # normalisation, so that pixels quantize to the bytes TFLite is given.
                return Preprocess(h, w, RGB, NHWC, 1.0, (127.5,) * 3, (127.5,) * 3)
            mean = zp + (128.0 if typ == tt.INT8 else 0.0)  # int8 holds pixel - 128
            std = 1.0 / scale
            return Preprocess(h, w, RGB, NHWC, 1.0, (mean,) * 3, (std,) * 3)
        if typ == tt.FLOAT32:
            # A float model does not say how it was normalised; MobileNetV3 TFLite models
            # take pixels scaled to [-1, 1].
            return Preprocess(h, w, RGB, NHWC, 1.0, (127.5,) * 3, (127.5,) * 3)
        raise TfliteImportError(f"input tensor type {typ} not supported")


def import_tflite(path: str, labels: Optional[List[str]] = None,
                  float_model: bool = False, weights_dtype: str = "auto") -> Network:
    """A quantized graph becomes a quantized Network unless float_model; a float graph is
    always imported as float, with float16 weights when weights_dtype is "float16", or
    "auto" and the graph's weights are float16."""
    with open(path, "rb") as f:
        data = f.read()
    graph = Graph(data)
    tt = graph.tfl.TensorType
    quantized = not float_model and graph.ttype(graph.inputs[0]) in (tt.UINT8, tt.INT8)
    importer = Importer(graph, quantized)
    net = importer.run()
    net.tflite_tensors = importer.tensors
    if weights_dtype == "auto":
        weights_dtype = "float16" if graph.half_constants and not net.quant else "float32"
    if weights_dtype == "float16":
        if net.quant is not None:
            raise TfliteImportError("--weights-dtype float16 applies to float models; add "
                                    "--float to dequantize a quantized graph")
        with_weight_dtype(net, "float16")
    if labels is not None:
        if len(labels) != net.num_classes:
            raise TfliteImportError(f"{len(labels)} labels for {net.num_classes} classes")
        net.labels = list(labels)
    return net


def parser() -> argparse.ArgumentParser:
    """The command line of the importer."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="the .tflite file")
    ap.add_argument("--labels", help="class names, one per line or 'index:name'")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--float", dest="float_model", action="store_true",
                    help="dequantize a quantized graph into a float model (activation ranges "
                         "kept as clamps) instead of importing it as a quantized model")
    ap.add_argument("--weights-dtype", type=weights_dtype,
                    choices=("auto", "float32", "float16"), default="auto",
                    help="weights of a float model: float16 halves the file (auto: float16 "
                         f"when the graph's weights are float16); {WEIGHTS_DTYPE_SPELLINGS}")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        from .export_torchvision import read_labels
        labels = read_labels(args.labels) if args.labels else None
        net = import_tflite(args.model, labels, args.float_model, args.weights_dtype)
        size = write_file(net, args.output)
    except (TfliteImportError, ValueError, OSError) as e:
        print(f"import_tflite: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {size:,} bytes, {len(net.blocks)} blocks, "
          f"{net.num_classes} classes, "
          f"{'int8' if net.quant else net.stem.weight.dtype.name + ' weights'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
