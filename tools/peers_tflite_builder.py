"""Writes a float32 TFLite flatbuffer of a torchvision MobileNetV3 (large or small).

Used by tools/bench_peers.py so that LiteRT runs the same architecture with the same
weights as the other engines, without TensorFlow. The graph is what TensorFlow's own
converter emits for this network:

  * BatchNorm folded into the preceding convolution (weights OHWI, depthwise 1HWC);
  * ReLU fused into the convolution, hard-swish as HARD_SWISH;
  * torch's symmetric padding: SAME where it coincides (stride 1, pad = (k-1)/2),
    otherwise an explicit PAD followed by a VALID convolution;
  * squeeze-excite: MEAN(keep_dims) -> CONV_2D(ReLU) -> CONV_2D(bias+3, RELU6) -> MUL(1/6)
    -> MUL with the block tensor (the hard-sigmoid as TF writes it);
  * head: MEAN over H, W -> FULLY_CONNECTED -> HARD_SWISH -> FULLY_CONNECTED.

Input is NHWC float32 [1, H, W, 3]; output float32 [1, classes] (logits).

With weights_dtype="float16" the graph is what the converter's float16 quantization
(`target_spec.supported_types = [tf.float16]`) writes: every conv and fully connected
weight and bias is a FLOAT16 constant read through a DEQUANTIZE op, the arithmetic float32.

    from peers_tflite_builder import build_tflite
    data = build_tflite(torch_model.eval(), 224)   # bytes
"""
from __future__ import annotations

import numpy as np

import flatbuffers
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType as Act
from tflite.BuiltinOperator import BuiltinOperator as Op
from tflite.BuiltinOptions import BuiltinOptions as Opt
from tflite.Padding import Padding
from tflite.TensorType import TensorType


def _np(t):
    return t.detach().cpu().double().numpy()


def _fold(conv, bn):
    """Returns (weight OIHW float64, bias float64) with BatchNorm folded in."""
    w = _np(conv.weight)
    b = _np(conv.bias) if conv.bias is not None else np.zeros(w.shape[0])
    if bn is not None:
        scale = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
        w = w * scale[:, None, None, None]
        b = (b - _np(bn.running_mean)) * scale + _np(bn.bias)
    return w, b


class _Graph:
    def __init__(self, half_weights=False):
        self.tensors = []   # (name, shape, dtype, buffer_index)
        self.buffers = [b""]  # buffer 0: the empty sentinel
        self.ops = []       # (opcode, inputs, outputs, options_type, options_builder)
        self.opcodes = []
        self.half_weights = half_weights

    def weight(self, name, array):
        """A layer's weight or bias: float32, or float16 behind a DEQUANTIZE op."""
        if not self.half_weights:
            return self.const(name, array)
        a = np.ascontiguousarray(array, dtype=np.float16)
        self.buffers.append(a.tobytes())
        self.tensors.append((name + "/fp16", list(a.shape), TensorType.FLOAT16,
                             len(self.buffers) - 1))
        y = self.act(name, a.shape)
        self.op(Op.DEQUANTIZE, [len(self.tensors) - 2], [y])
        return y

    def const(self, name, array, dtype=np.float32):
        a = np.ascontiguousarray(array, dtype=dtype)
        self.buffers.append(a.tobytes())
        ttype = TensorType.FLOAT32 if dtype == np.float32 else TensorType.INT32
        self.tensors.append((name, list(a.shape), ttype, len(self.buffers) - 1))
        return len(self.tensors) - 1

    def act(self, name, shape):
        self.tensors.append((name, list(shape), TensorType.FLOAT32, 0))
        return len(self.tensors) - 1

    def shape(self, t):
        return self.tensors[t][1]

    def op(self, code, inputs, outputs, opt_type=Opt.NONE, opt_fn=None):
        if code not in self.opcodes:
            self.opcodes.append(code)
        self.ops.append((self.opcodes.index(code), inputs, outputs, opt_type, opt_fn))

    # -- flatbuffer serialisation ------------------------------------------------------
    def serialize(self, inputs, outputs):
        b = flatbuffers.Builder(1 << 20)

        def int_vector(start_fn, values):
            start_fn(b, len(values))
            for v in reversed(values):
                b.PrependInt32(v)
            return b.EndVector()

        buf_offsets = []
        for data in self.buffers:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                vec = b.EndVector()
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buf_offsets.append(tflite.BufferEnd(b))

        tensor_offsets = []
        for name, shape, ttype, buf in self.tensors:
            name_off = b.CreateString(name)
            shape_off = int_vector(tflite.TensorStartShapeVector, shape)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape_off)
            tflite.TensorAddType(b, ttype)
            tflite.TensorAddBuffer(b, buf)
            tflite.TensorAddName(b, name_off)
            tensor_offsets.append(tflite.TensorEnd(b))

        op_offsets = []
        for opcode_index, ins, outs, opt_type, opt_fn in self.ops:
            opts = opt_fn(b) if opt_fn else None
            in_off = int_vector(tflite.OperatorStartInputsVector, ins)
            out_off = int_vector(tflite.OperatorStartOutputsVector, outs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, opcode_index)
            tflite.OperatorAddInputs(b, in_off)
            tflite.OperatorAddOutputs(b, out_off)
            if opts is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt_type)
                tflite.OperatorAddBuiltinOptions(b, opts)
            op_offsets.append(tflite.OperatorEnd(b))

        def table_vector(start_fn, offsets):
            start_fn(b, len(offsets))
            for o in reversed(offsets):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        tensors_vec = table_vector(tflite.SubGraphStartTensorsVector, tensor_offsets)
        ops_vec = table_vector(tflite.SubGraphStartOperatorsVector, op_offsets)
        in_vec = int_vector(tflite.SubGraphStartInputsVector, inputs)
        out_vec = int_vector(tflite.SubGraphStartOutputsVector, outputs)
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddOperators(b, ops_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddName(b, sg_name)
        subgraph = tflite.SubGraphEnd(b)

        code_offsets = []
        for code in self.opcodes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))

        codes_vec = table_vector(tflite.ModelStartOperatorCodesVector, code_offsets)
        subgraphs_vec = table_vector(tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = table_vector(tflite.ModelStartBuffersVector, buf_offsets)
        desc = b.CreateString("mnv3 bench_peers: torchvision MobileNetV3, float32")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, buffers_vec)
        model = tflite.ModelEnd(b)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


def _conv_opts(padding, stride, act, depthwise):
    def fn(b):
        if depthwise:
            tflite.DepthwiseConv2DOptionsStart(b)
            tflite.DepthwiseConv2DOptionsAddPadding(b, padding)
            tflite.DepthwiseConv2DOptionsAddStrideW(b, stride)
            tflite.DepthwiseConv2DOptionsAddStrideH(b, stride)
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
            tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
            tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
            tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
            return tflite.DepthwiseConv2DOptionsEnd(b)
        tflite.Conv2DOptionsStart(b)
        tflite.Conv2DOptionsAddPadding(b, padding)
        tflite.Conv2DOptionsAddStrideW(b, stride)
        tflite.Conv2DOptionsAddStrideH(b, stride)
        tflite.Conv2DOptionsAddFusedActivationFunction(b, act)
        tflite.Conv2DOptionsAddDilationWFactor(b, 1)
        tflite.Conv2DOptionsAddDilationHFactor(b, 1)
        return tflite.Conv2DOptionsEnd(b)
    return fn


def _fused_opts(start, add_act, end, act):
    def fn(b):
        start(b)
        add_act(b, act)
        return end(b)
    return fn


class _Builder:
    def __init__(self, half_weights=False):
        self.g = _Graph(half_weights)
        self.n = 0

    def name(self, s):
        self.n += 1
        return f"{s}_{self.n}"

    def conv(self, x, conv, bn, act_module, label):
        import torch.nn as nn
        g = self.g
        w, bias = _fold(conv, bn)
        _, h, wd, cin = g.shape(x)
        k = conv.kernel_size[0]
        s = conv.stride[0]
        p = conv.padding[0]
        depthwise = conv.groups > 1
        if depthwise and conv.groups != cin:
            raise ValueError("grouped convolution that is not depthwise")
        if s == 1 and p == (k - 1) // 2 and k % 2 == 1:
            padding = Padding.SAME
        else:
            padding = Padding.VALID
            if p > 0:
                pads = g.const(self.name(label + "/paddings"),
                               np.array([[0, 0], [p, p], [p, p], [0, 0]]), np.int32)
                y = g.act(self.name(label + "/pad"), [1, h + 2 * p, wd + 2 * p, cin])
                g.op(Op.PAD, [x, pads], [y], Opt.PadOptions,
                     lambda b: (tflite.PadOptionsStart(b), tflite.PadOptionsEnd(b))[1])
                x, h, wd = y, h + 2 * p, wd + 2 * p
        if padding == Padding.SAME:
            oh, ow = -(-h // s), -(-wd // s)
        else:
            oh, ow = (h - k) // s + 1, (wd - k) // s + 1
        cout = w.shape[0]
        if depthwise:
            wt = w.transpose(1, 2, 3, 0)  # [C,1,kh,kw] -> [1,kh,kw,C]
        else:
            wt = w.transpose(0, 2, 3, 1)  # OIHW -> OHWI
        fused = Act.NONE
        post = None
        if isinstance(act_module, nn.ReLU):
            fused = Act.RELU
        elif isinstance(act_module, nn.ReLU6):
            fused = Act.RELU6
        elif isinstance(act_module, nn.Hardswish):
            post = "hswish"
        elif act_module is not None:
            raise ValueError(f"unsupported activation {act_module}")
        wi = g.weight(self.name(label + "/weights"), wt)
        bi = g.weight(self.name(label + "/bias"), bias)
        y = g.act(self.name(label), [1, oh, ow, cout])
        g.op(Op.DEPTHWISE_CONV_2D if depthwise else Op.CONV_2D, [x, wi, bi], [y],
             Opt.DepthwiseConv2DOptions if depthwise else Opt.Conv2DOptions,
             _conv_opts(padding, s, fused, depthwise))
        if post == "hswish":
            y = self.hardswish(y, label)
        return y

    def hardswish(self, x, label):
        g = self.g
        y = g.act(self.name(label + "/hswish"), g.shape(x))
        g.op(Op.HARD_SWISH, [x], [y])
        return y

    def mean(self, x, keep_dims, label):
        g = self.g
        _, h, w, c = g.shape(x)
        axes = g.const(self.name(label + "/axes"), np.array([1, 2]), np.int32)
        y = g.act(self.name(label), [1, 1, 1, c] if keep_dims else [1, c])

        def fn(b):
            tflite.ReducerOptionsStart(b)
            tflite.ReducerOptionsAddKeepDims(b, bool(keep_dims))
            return tflite.ReducerOptionsEnd(b)
        g.op(Op.MEAN, [x, axes], [y], Opt.ReducerOptions, fn)
        return y

    def binary(self, code, a, bt, label, act=Act.NONE):
        g = self.g
        sa, sb = g.shape(a), g.shape(bt)
        shape = [max(p, q) for p, q in zip(sa, sb)] if len(sa) == len(sb) else sa
        y = g.act(self.name(label), shape)
        if code == Op.ADD:
            g.op(code, [a, bt], [y], Opt.AddOptions,
                 _fused_opts(tflite.AddOptionsStart, tflite.AddOptionsAddFusedActivationFunction,
                             tflite.AddOptionsEnd, act))
        else:
            g.op(code, [a, bt], [y], Opt.MulOptions,
                 _fused_opts(tflite.MulOptionsStart, tflite.MulOptionsAddFusedActivationFunction,
                             tflite.MulOptionsEnd, act))
        return y

    def squeeze_excite(self, x, se, label):
        import torch.nn as nn
        g = self.g
        if not isinstance(se.activation, nn.ReLU) or not isinstance(se.scale_activation,
                                                                    nn.Hardsigmoid):
            raise ValueError("squeeze-excite must be ReLU / Hardsigmoid (torchvision)")
        pooled = self.mean(x, True, label + "/squeeze")
        z = self.conv(pooled, se.fc1, None, se.activation, label + "/fc1")
        # hardsigmoid(v) = relu6(v + 3) / 6: fold the +3 into fc2's bias, fuse RELU6.
        w, bias = _fold(se.fc2, None)
        c = w.shape[0]
        wi = g.weight(self.name(label + "/fc2/weights"), w.transpose(0, 2, 3, 1))
        bi = g.weight(self.name(label + "/fc2/bias"), bias + 3.0)
        gate = g.act(self.name(label + "/fc2"), [1, 1, 1, c])
        g.op(Op.CONV_2D, [z, wi, bi], [gate], Opt.Conv2DOptions,
             _conv_opts(Padding.SAME, 1, Act.RELU6, False))
        sixth = g.const(self.name(label + "/one_sixth"), np.array([1.0 / 6.0]))
        gate = self.binary(Op.MUL, gate, sixth, label + "/hsigmoid")
        return self.binary(Op.MUL, x, gate, label + "/excite")

    def fully_connected(self, x, linear, act, label):
        g = self.g
        w = _np(linear.weight)
        bias = _np(linear.bias) if linear.bias is not None else np.zeros(w.shape[0])
        wi = g.weight(self.name(label + "/weights"), w)
        bi = g.weight(self.name(label + "/bias"), bias)
        y = g.act(self.name(label), [1, w.shape[0]])
        g.op(Op.FULLY_CONNECTED, [x, wi, bi], [y], Opt.FullyConnectedOptions,
             _fused_opts(tflite.FullyConnectedOptionsStart,
                         tflite.FullyConnectedOptionsAddFusedActivationFunction,
                         tflite.FullyConnectedOptionsEnd, act))
        return y


def _conv_norm_act(b, x, seq, label):
    import torch.nn as nn
    conv = seq[0]
    bn = None
    act = None
    for m in list(seq)[1:]:
        if isinstance(m, nn.BatchNorm2d):
            bn = m
        elif isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish)):
            act = m
        else:
            raise ValueError(f"unexpected module {m}")
    return b.conv(x, conv, bn, act, label)


def build_tflite(model, resolution: int = 224, weights_dtype: str = "float32") -> bytes:
    """Serialises a torchvision MobileNetV3 in eval mode as a float32 .tflite model, or
    with weights_dtype "float16" as a float16-quantized one."""
    import torch.nn as nn
    from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"weights_dtype {weights_dtype!r}: float32 or float16")
    b = _Builder(weights_dtype == "float16")
    g = b.g
    x_in = g.act("input", [1, resolution, resolution, 3])
    x = x_in
    feats = list(model.features)
    for i, layer in enumerate(feats):
        label = f"features.{i}"
        if isinstance(layer, Conv2dNormActivation):
            x = _conv_norm_act(b, x, layer, label)
            continue
        block_in = x
        for j, sub in enumerate(layer.block):
            sl = f"{label}.block.{j}"
            if isinstance(sub, Conv2dNormActivation):
                x = _conv_norm_act(b, x, sub, sl)
            elif isinstance(sub, SqueezeExcitation):
                x = b.squeeze_excite(x, sub, sl)
            else:
                raise ValueError(f"unexpected block member {sub}")
        if layer.use_res_connect:
            x = b.binary(Op.ADD, x, block_in, label + "/add")
    x = b.mean(x, False, "avgpool")
    cls = list(model.classifier)
    i = 0
    while i < len(cls):
        m = cls[i]
        if isinstance(m, nn.Linear):
            act = Act.NONE
            x = b.fully_connected(x, m, act, f"classifier.{i}")
        elif isinstance(m, nn.Hardswish):
            x = b.hardswish(x, f"classifier.{i}")
        elif isinstance(m, nn.Dropout):
            pass
        else:
            raise ValueError(f"unexpected classifier module {m}")
        i += 1
    # Name the output tensor plainly.
    name, shape, ttype, buf = g.tensors[x]
    g.tensors[x] = ("logits", shape, ttype, buf)
    return g.serialize([x_in], [x])
