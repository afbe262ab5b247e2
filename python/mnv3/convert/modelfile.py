"""Reader and writer of .mnv3 model files (docs/FORMAT.md, version 1.1).

The network description is plain dataclasses; tensors are numpy arrays in the canonical
layouts: dense conv [out][kh][kw][in], depthwise [kh][kw][channels], 1x1 and fully
connected [out][in], bias [out]. Float models hold float32 weights and biases and are
written as 1.0 files, or float16 weights (numpy float16 arrays; see with_weight_dtype) with
float32 biases, written as 1.1 files; quantized models (Network.quant set) hold int8 weights, int32 biases
and the quantization of every conv and activation slot, and are written as 1.1 files.

    net = read_file("model.mnv3")
    write_file(net, "copy.mnv3")
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

MAGIC = b"MNV3\x00MDL"
VERSION_MAJOR = 1
VERSION_MINOR = 1
BYTE_ORDER_MARK = 0x01020304
HEADER_SIZE = 64
SECTION_ENTRY_SIZE = 24
CONV_RECORD_SIZE = 80
PREPROCESS_SIZE = 48
TENSOR_ALIGN = 64
NO_TENSOR = 0xFFFFFFFF

SECTION_NETWORK = 1
SECTION_TENSORS = 2
SECTION_PREPROCESS = 3
SECTION_LABELS = 4
SECTION_QUANT = 5
DTYPE_F32, DTYPE_I8, DTYPE_I32, DTYPE_F16 = 1, 2, 3, 4
_DTYPES = {DTYPE_F32: "<f4", DTYPE_I8: "i1", DTYPE_I32: "<i4", DTYPE_F16: "<f2"}
MULT_DOUBLE, MULT_FLOAT_PRODUCT = 0, 1
POOL_AVG_HALF_UP, POOL_AVG_HALF_AWAY, POOL_MEAN = 0, 1, 2

ARCH = {"custom": 0, "large": 1, "small": 2}
FLAVOR = {"custom": 0, "torchvision": 1, "walkthrough": 2, "tflite": 3}
ACT_NONE, ACT_RELU, ACT_RELU6, ACT_HARD_SWISH, ACT_HARD_SIGMOID = range(5)
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 2, "hard_swish": 3, "hard_sigmoid": 4}
PAD_EXPLICIT, PAD_SAME = 0, 1
RGB, BGR = 0, 1
NCHW, NHWC = 0, 1

INF = float("inf")
UNBOUNDED = (-INF, INF)

MAX_CHANNELS = 16384
MAX_CLASSES = 100000  # out_channels of the last head layer may go up to this
MAX_KERNEL = 11
MAX_BLOCKS = 64
MAX_HEAD = 4
MAX_TENSORS = 4096


class FormatError(ValueError):
    """The bytes are not a valid .mnv3 file, or a description cannot be written."""


Clamp = Tuple[float, float]
QParam = Tuple[float, int]  # scale (float32), zero point of an int8 tensor
NO_Q: QParam = (0.0, 0)


@dataclass
class ConvQuant:
    """A quantized conv: acc = bias + sum (x - x_zp)(w - weight_zero_point), requantized to
    `output`, clamped to act_range, then optionally looked up in `table` (256 int8 entries
    indexed by byte + 128, results on table_output's scale)."""
    output: QParam
    weight_scale: np.ndarray
    bias_scale: Optional[np.ndarray] = None
    weight_zero_point: int = 0
    act_range: Tuple[int, int] = (-128, 127)
    mult_mode: int = MULT_DOUBLE
    table: Optional[np.ndarray] = None
    table_output: QParam = NO_Q

    def result(self) -> QParam:
        return self.table_output if self.table is not None else self.output


@dataclass
class BlockQuant:
    se_pool_mode: int = POOL_AVG_HALF_UP
    se_pool_output: QParam = NO_Q
    se_mul_output: QParam = NO_Q
    residual_output: QParam = NO_Q


@dataclass
class NetQuant:
    input: QParam
    pool_mode: int
    pool_output: QParam
    io_type: int = 0  # the source model's input/logit bytes: 0 int8, 1 uint8


@dataclass
class Conv:
    in_channels: int
    out_channels: int
    kernel: int = 1
    stride: int = 1
    depthwise: bool = False
    padding_mode: int = PAD_EXPLICIT
    pads: Tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: int = ACT_NONE
    batchnorm_folded: bool = False
    pre_clamp: Clamp = UNBOUNDED
    post_clamp: Clamp = UNBOUNDED
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    quant: Optional[ConvQuant] = None

    @property
    def has_bias(self) -> bool:
        return self.bias is not None

    def weight_shape(self) -> Tuple[int, ...]:
        if self.depthwise:
            return (self.kernel, self.kernel, self.out_channels)
        if self.kernel == 1:
            return (self.out_channels, self.in_channels)
        return (self.out_channels, self.kernel, self.kernel, self.in_channels)

    def weight_count(self) -> int:
        return int(np.prod(self.weight_shape()))

    def params(self) -> int:
        """Parameters as the source framework counts them (a BatchNorm is 2 per channel)."""
        n = self.weight_count()
        if self.batchnorm_folded:
            n += 2 * self.out_channels
        elif self.has_bias:
            n += self.out_channels
        return n


@dataclass
class SqueezeExcite:
    reduce: Conv
    expand: Conv
    squeeze_clamp: Clamp = UNBOUNDED
    scale_clamp: Clamp = UNBOUNDED


@dataclass
class Block:
    depthwise: Conv
    project: Conv
    expand: Optional[Conv] = None
    se: Optional[SqueezeExcite] = None
    residual: bool = False
    residual_clamp: Clamp = UNBOUNDED
    quant: Optional[BlockQuant] = None


@dataclass
class Preprocess:
    height: int = 224
    width: int = 224
    channel_order: int = RGB
    layout: int = NCHW
    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: Tuple[float, float, float] = (0.229, 0.224, 0.225)


IMAGENET_PREPROCESS = Preprocess()


@dataclass
class Network:
    stem: Conv
    blocks: List[Block]
    last_conv: Conv
    head: List[Conv]
    pool_clamp: Clamp = UNBOUNDED
    arch: int = 0
    flavor: int = 0
    input_channels: int = 3
    preprocess: Preprocess = field(default_factory=Preprocess)
    labels: Optional[List[str]] = None
    quant: Optional[NetQuant] = None

    def convs(self) -> List[Conv]:
        """Every conv in canonical order: stem; per block expand, depthwise, se.reduce,
        se.expand, project; last conv; head. This is also the tensor order of files."""
        out = [self.stem]
        for b in self.blocks:
            if b.expand is not None:
                out.append(b.expand)
            out.append(b.depthwise)
            if b.se is not None:
                out += [b.se.reduce, b.se.expand]
            out.append(b.project)
        out.append(self.last_conv)
        out += self.head
        return out

    def conv_names(self) -> List[str]:
        names = ["stem"]
        for i, b in enumerate(self.blocks):
            if b.expand is not None:
                names.append(f"block {i} expand")
            names.append(f"block {i} depthwise")
            if b.se is not None:
                names += [f"block {i} se.reduce", f"block {i} se.expand"]
            names.append(f"block {i} project")
        names.append("last_conv")
        names += [f"head {i}" for i in range(len(self.head))]
        return names

    @property
    def num_classes(self) -> int:
        return self.head[-1].out_channels

    @property
    def feature_dim(self) -> int:
        return self.last_conv.out_channels

    def params(self) -> int:
        return sum(c.params() for c in self.convs())


# ------------------------------------------------------------------------------------------
# Validation (the same rules the C loader applies)
# ------------------------------------------------------------------------------------------

def _check_clamp(c: Clamp, what: str) -> None:
    lo, hi = c
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise FormatError(f"{what}: clamp bounds are NaN or reversed ({lo}, {hi})")


def _check_conv(c: Conv, what: str, must_be_1x1: bool, max_out: int = MAX_CHANNELS) -> None:
    for name, limit in (("in_channels", MAX_CHANNELS), ("out_channels", max_out)):
        v = getattr(c, name)
        if not 1 <= v <= limit:
            raise FormatError(f"{what}: {name} {v} outside 1..{limit}")
    if not 1 <= c.kernel <= MAX_KERNEL:
        raise FormatError(f"{what}: kernel {c.kernel} outside 1..{MAX_KERNEL}")
    if c.stride not in (1, 2):
        raise FormatError(f"{what}: stride {c.stride} is not 1 or 2")
    if c.padding_mode not in (PAD_EXPLICIT, PAD_SAME):
        raise FormatError(f"{what}: padding mode {c.padding_mode} unknown")
    explicit = c.padding_mode == PAD_EXPLICIT  # under SAME the pads are ignored
    if explicit and any(p < 0 or p >= c.kernel for p in c.pads):
        raise FormatError(f"{what}: padding {c.pads} must be smaller than kernel {c.kernel}")
    if c.depthwise and c.in_channels != c.out_channels:
        raise FormatError(f"{what}: depthwise conv with {c.in_channels} inputs and "
                          f"{c.out_channels} outputs")
    if must_be_1x1 and (c.kernel != 1 or c.stride != 1 or c.depthwise or
                        (explicit and any(c.pads))):
        raise FormatError(f"{what}: must be a 1x1, stride 1, unpadded, dense conv")
    if c.activation not in range(5):
        raise FormatError(f"{what}: activation {c.activation} unknown")
    _check_clamp(c.pre_clamp, what)
    _check_clamp(c.post_clamp, what)
    if c.weight is None:
        raise FormatError(f"{what}: weights missing")
    if tuple(c.weight.shape) != c.weight_shape() and c.weight.size != c.weight_count():
        raise FormatError(f"{what}: weight has shape {tuple(c.weight.shape)}, expected "
                          f"{c.weight_shape()}")
    if c.bias is not None and c.bias.size != c.out_channels:
        raise FormatError(f"{what}: bias has {c.bias.size} elements, expected {c.out_channels}")
    for name, t in (("weight", c.weight), ("bias", c.bias)):
        if t is None or c.quant is not None:
            continue
        bad = np.flatnonzero(~np.isfinite(np.asarray(t, dtype=np.float32).reshape(-1)))
        if bad.size:
            v = float(np.asarray(t).reshape(-1)[bad[0]])
            raise FormatError(f"{what}: {name} element {bad[0]} is "
                              f"{'NaN' if math.isnan(v) else 'infinite'}")


def _is_half(t: Optional[np.ndarray]) -> bool:
    return t is not None and np.asarray(t).dtype == np.float16


def with_weight_dtype(net: Network, dtype: str) -> Network:
    """Stores a float network's conv weights as "float16" (rounded to nearest even; a weight
    beyond float16's range is refused) or "float32" (exact), in place; biases stay float32.
    Returns the network."""
    if net.quant is not None:
        raise FormatError("a quantized network's weights stay int8")
    if dtype not in ("float16", "float32"):
        raise FormatError(f"weight dtype {dtype!r}: float16 or float32")
    for what, c in zip(net.conv_names(), net.convs()):
        w = np.asarray(c.weight)
        if dtype == "float16":
            with np.errstate(over="ignore"):
                h = w.astype(np.float32).astype(np.float16)
            big = np.flatnonzero(np.isinf(h.reshape(-1)) & np.isfinite(w.reshape(-1)))
            if big.size:
                raise FormatError(f"{what}: weight element {big[0]} "
                                  f"({float(w.reshape(-1)[big[0]])}) is beyond float16's range")
            c.weight = h
        else:
            c.weight = w.astype(np.float32)
    return net


def _chain(have: int, want: int, what: str) -> None:
    if have != want:
        raise FormatError(f"{what}: takes {want} channels but receives {have}")


def validate(net: Network) -> None:
    """Raises FormatError when the description is not one the C library accepts."""
    if net.input_channels != 3:
        raise FormatError(f"input_channels is {net.input_channels}, expected 3")
    if net.arch not in range(3) or net.flavor not in range(4):
        raise FormatError(f"arch {net.arch} / flavor {net.flavor} unknown")
    _check_conv(net.stem, "stem", False)
    if net.stem.depthwise:
        raise FormatError("stem: must be a dense conv")
    _chain(net.input_channels, net.stem.in_channels, "stem")
    if len(net.blocks) > MAX_BLOCKS:
        raise FormatError(f"{len(net.blocks)} blocks exceeds {MAX_BLOCKS}")
    ch = net.stem.out_channels
    for i, b in enumerate(net.blocks):
        block_in = ch
        if b.expand is not None:
            _check_conv(b.expand, f"block {i} expand", True)
            _chain(ch, b.expand.in_channels, f"block {i} expand")
            ch = b.expand.out_channels
        _check_conv(b.depthwise, f"block {i} depthwise", False)
        if not b.depthwise.depthwise:
            raise FormatError(f"block {i} depthwise: not marked depthwise")
        _chain(ch, b.depthwise.in_channels, f"block {i} depthwise")
        if b.se is not None:
            _check_conv(b.se.reduce, f"block {i} se.reduce", True)
            _chain(ch, b.se.reduce.in_channels, f"block {i} se.reduce")
            _check_conv(b.se.expand, f"block {i} se.expand", True)
            _chain(b.se.reduce.out_channels, b.se.expand.in_channels, f"block {i} se.expand")
            _chain(b.se.expand.out_channels, ch, f"block {i} se.expand")
            _check_clamp(b.se.squeeze_clamp, f"block {i} se")
            _check_clamp(b.se.scale_clamp, f"block {i} se")
        _check_conv(b.project, f"block {i} project", True)
        _chain(ch, b.project.in_channels, f"block {i} project")
        ch = b.project.out_channels
        if b.residual:
            d = b.depthwise
            keeps = d.stride == 1 and (d.padding_mode == PAD_SAME or (
                d.pads[0] + d.pads[2] == d.kernel - 1 and d.pads[1] + d.pads[3] == d.kernel - 1))
            if not keeps or block_in != ch:
                raise FormatError(f"block {i}: residual needs stride 1, size-preserving "
                                  f"padding and in == out channels ({block_in} vs {ch})")
            _check_clamp(b.residual_clamp, f"block {i} residual")
    _check_conv(net.last_conv, "last_conv", True)
    _chain(ch, net.last_conv.in_channels, "last_conv")
    if net.quant is None:
        stem_half = _is_half(net.stem.weight)
        for what, c in zip(net.conv_names(), net.convs()):
            if _is_half(c.weight) != stem_half:
                raise FormatError(f"{what}: {c.weight.dtype} weights in a model whose stem has "
                                  f"{net.stem.weight.dtype}: all float16 or none")
    _check_clamp(net.pool_clamp, "pool")
    if not 1 <= len(net.head) <= MAX_HEAD:
        raise FormatError(f"head has {len(net.head)} layers, expected 1..{MAX_HEAD}")
    ch = net.last_conv.out_channels
    for i, h in enumerate(net.head):
        _check_conv(h, f"head {i}", True,
                    MAX_CLASSES if i == len(net.head) - 1 else MAX_CHANNELS)
        _chain(ch, h.in_channels, f"head {i}")
        ch = h.out_channels
    if net.labels is not None and len(net.labels) != ch:
        raise FormatError(f"{len(net.labels)} labels for {ch} classes")
    p = net.preprocess
    if any(s == 0 or not math.isfinite(s) for s in p.std) or not all(
            math.isfinite(m) for m in p.mean):
        raise FormatError("preprocess: mean/std invalid")
    if p.scale == 0 or not math.isfinite(p.scale):
        raise FormatError("preprocess: scale invalid")
    if p.channel_order not in (RGB, BGR) or p.layout not in (NCHW, NHWC):
        raise FormatError("preprocess: channel order/layout unknown")


# ------------------------------------------------------------------------------------------
# Writer
# ------------------------------------------------------------------------------------------

def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _pack_clamp(c: Clamp) -> bytes:
    return struct.pack("<2f", float(c[0]), float(c[1]))


def _pack_conv(c: Conv, weight_index: int, bias_index: int) -> bytes:
    flags = (1 if c.has_bias else 0) | (2 if c.batchnorm_folded else 0)
    pads = c.pads if c.padding_mode == PAD_EXPLICIT else (0, 0, 0, 0)  # SAME: written as 0
    return struct.pack("<12I4f4I", 1 if c.depthwise else 0, c.in_channels, c.out_channels,
                       c.kernel, c.stride, c.padding_mode, *pads, c.activation, flags,
                       float(c.pre_clamp[0]), float(c.pre_clamp[1]), float(c.post_clamp[0]),
                       float(c.post_clamp[1]), weight_index, bias_index, 0, 0)


def to_bytes(net: Network) -> bytes:
    """Serialises a network. Validates it first."""
    validate(net)
    tensors: List[Tuple[int, np.ndarray]] = []
    quantized = net.quant is not None
    if quantized and any(c.quant is None for c in net.convs()):
        raise FormatError("a quantized network needs the quantization of every conv")

    def add(t: np.ndarray, dtype: int = DTYPE_F32) -> int:
        tensors.append((dtype, np.ascontiguousarray(t, dtype=_DTYPES[dtype]).reshape(-1)))
        return len(tensors) - 1

    conv_bytes = {}
    quant_convs = bytearray()
    half = not quantized and _is_half(net.stem.weight)
    for c in net.convs():
        w = add(c.weight, DTYPE_I8 if quantized else DTYPE_F16 if half else DTYPE_F32)
        b = add(c.bias, DTYPE_I32 if quantized else DTYPE_F32) if c.has_bias else NO_TENSOR
        conv_bytes[id(c)] = _pack_conv(c, w, b)
        if quantized:
            q = c.quant
            ws = add(q.weight_scale)
            bs = add(q.bias_scale) if c.has_bias else NO_TENSOR
            tb = add(q.table, DTYPE_I8) if q.table is not None else NO_TENSOR
            tq = q.table_output if q.table is not None else NO_Q
            quant_convs += struct.pack("<fi3iI3Ifi I".replace(" ", ""), q.output[0], q.output[1],
                                       q.act_range[0], q.act_range[1], q.weight_zero_point,
                                       q.mult_mode, ws, bs, tb, tq[0], tq[1], 0)
    if len(tensors) > MAX_TENSORS:
        raise FormatError(f"{len(tensors)} tensors exceeds {MAX_TENSORS}")

    nw = bytearray(struct.pack("<6I", net.arch, net.flavor, net.input_channels,
                               len(net.blocks), len(net.head), 0))
    nw += conv_bytes[id(net.stem)]
    for b in net.blocks:
        flags = (1 if b.expand is not None else 0) | (2 if b.se is not None else 0) | (
            4 if b.residual else 0)
        se = b.se
        nw += struct.pack("<I", flags) + _pack_clamp(b.residual_clamp)
        nw += _pack_clamp(se.squeeze_clamp if se else UNBOUNDED)
        nw += _pack_clamp(se.scale_clamp if se else UNBOUNDED)
        if b.expand is not None:
            nw += conv_bytes[id(b.expand)]
        nw += conv_bytes[id(b.depthwise)]
        if se is not None:
            nw += conv_bytes[id(se.reduce)] + conv_bytes[id(se.expand)]
        nw += conv_bytes[id(b.project)]
    nw += conv_bytes[id(net.last_conv)]
    nw += _pack_clamp(net.pool_clamp)
    for h in net.head:
        nw += conv_bytes[id(h)]

    p = net.preprocess
    pre = struct.pack("<4I7fI", p.height, p.width, p.channel_order, p.layout, p.scale,
                      *p.mean, *p.std, 0)

    sections = [(SECTION_NETWORK, bytes(nw)), (SECTION_TENSORS, None),
                (SECTION_PREPROCESS, pre)]
    if net.labels is not None:
        lab = struct.pack("<I", len(net.labels)) + b"".join(
            s.encode("utf-8") + b"\0" for s in net.labels)
        sections.append((SECTION_LABELS, lab))
    if quantized:
        nq = net.quant
        qs = bytearray(struct.pack("<fiIfiI", nq.input[0], nq.input[1], nq.pool_mode,
                                   nq.pool_output[0], nq.pool_output[1], nq.io_type))
        for b in net.blocks:
            bq = b.quant or BlockQuant()
            se = b.se is not None
            qs += struct.pack("<IfififiI", bq.se_pool_mode if se else 0,
                              *(bq.se_pool_output if se else NO_Q),
                              *(bq.se_mul_output if se else NO_Q),
                              *(bq.residual_output if b.residual else NO_Q), 0)
        sections.append((SECTION_QUANT, bytes(qs + quant_convs)))

    tensor_section_size = 8 + 24 * len(tensors)
    pos = HEADER_SIZE + SECTION_ENTRY_SIZE * len(sections)
    offsets = []
    for typ, data in sections:
        pos = _align(pos, 8)
        size = tensor_section_size if data is None else len(data)
        offsets.append((pos, size))
        pos += size
    tensor_offsets = []
    for _, t in tensors:
        pos = _align(pos, TENSOR_ALIGN)
        tensor_offsets.append(pos)
        pos += t.nbytes
    file_size = pos

    tsec = bytearray(struct.pack("<2I", len(tensors), 0))
    for (dtype, t), off in zip(tensors, tensor_offsets):
        tsec += struct.pack("<2I2Q", dtype, 0, off, t.size)

    buf = bytearray(file_size)
    table = bytearray()
    for (typ, data), (off, size) in zip(sections, offsets):
        data = bytes(tsec) if data is None else data
        buf[off:off + size] = data
        table += struct.pack("<2I2Q", typ, 0, off, size)
    buf[HEADER_SIZE:HEADER_SIZE + len(table)] = table
    for (_, t), off in zip(tensors, tensor_offsets):
        buf[off:off + t.nbytes] = t.tobytes()
    crc = zlib.crc32(memoryview(buf)[HEADER_SIZE:]) & 0xFFFFFFFF
    # float32 models stay 1.0 files, byte for byte as before the 1.1 tensor types existed.
    header = MAGIC + struct.pack("<2HIQIIQII", VERSION_MAJOR, 1 if quantized or half else 0,
                                 BYTE_ORDER_MARK,
                                 file_size, HEADER_SIZE, len(sections), HEADER_SIZE, crc, 0)
    header += b"\0" * (HEADER_SIZE - len(header))
    buf[:HEADER_SIZE] = header
    return bytes(buf)


def write_file(net: Network, path: str) -> int:
    data = to_bytes(net)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


# ------------------------------------------------------------------------------------------
# Reader
# ------------------------------------------------------------------------------------------

class _Cursor:
    def __init__(self, data: bytes, start: int, end: int, what: str):
        self.data, self.pos, self.end, self.what = data, start, end, what

    def take(self, fmt: str):
        n = struct.calcsize(fmt)
        if self.pos + n > self.end:
            raise FormatError(f"{self.what} section truncated at byte {self.pos}")
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += n
        return v


def from_bytes(data: bytes, check_crc: bool = True) -> Network:
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise FormatError(f"file is {len(data)} bytes, shorter than the 64-byte header")
    if data[:8] != MAGIC:
        raise FormatError("bad magic: not an .mnv3 file")
    (major, minor, bom, file_size, header_size, nsec, table_off, crc,
     flags) = struct.unpack_from("<2HIQIIQII", data, 8)
    if major != VERSION_MAJOR:
        raise FormatError(f"format version {major}.{minor} is not readable (need {VERSION_MAJOR}.x)")
    if bom != BYTE_ORDER_MARK:
        raise FormatError(f"byte-order mark 0x{bom:08x} is not 0x01020304")
    if file_size != len(data):
        raise FormatError(f"header says {file_size} bytes, file has {len(data)}")
    if header_size != HEADER_SIZE or table_off != HEADER_SIZE:
        raise FormatError("header_size and section_table_offset must be 64")
    if not 1 <= nsec <= 16:
        raise FormatError(f"section_count {nsec} not in 1..16")
    if HEADER_SIZE + SECTION_ENTRY_SIZE * nsec > file_size:
        raise FormatError("section table runs past the end of the file")
    if check_crc and zlib.crc32(data[HEADER_SIZE:]) & 0xFFFFFFFF != crc:
        raise FormatError("payload CRC-32 mismatch")
    sections = {}
    for i in range(nsec):
        typ, _, off, size = struct.unpack_from("<2I2Q", data, HEADER_SIZE + 24 * i)
        if typ & 0x80000000:
            continue
        if typ not in (1, 2, 3, 4, 5):
            raise FormatError(f"unknown section type {typ}")
        if typ in sections:
            raise FormatError(f"section type {typ} appears twice")
        if off % 8 or off + size > file_size:
            raise FormatError(f"section {typ} at offset {off} size {size} is misplaced")
        sections[typ] = (off, size)
    for typ in (SECTION_NETWORK, SECTION_TENSORS, SECTION_PREPROCESS):
        if typ not in sections:
            raise FormatError(f"required section {typ} missing")

    # Tensors.
    off, size = sections[SECTION_TENSORS]
    cur = _Cursor(data, off, off + size, "TENSORS")
    count, _ = cur.take("<2I")
    if not 1 <= count <= MAX_TENSORS:
        raise FormatError(f"tensor count {count} not in 1..{MAX_TENSORS}")
    tensors = []
    for i in range(count):
        dtype, _, toff, n = cur.take("<2I2Q")
        if dtype not in _DTYPES:
            raise FormatError(f"tensor {i}: dtype {dtype} unknown")
        dt = np.dtype(_DTYPES[dtype])
        if toff % TENSOR_ALIGN or toff + dt.itemsize * n > file_size:
            raise FormatError(f"tensor {i}: offset {toff} misaligned or out of the file")
        tensors.append(np.frombuffer(data, dtype=dt, count=n, offset=toff).astype(dt.newbyteorder("=")))

    def tensor(i: int, shape, what: str) -> np.ndarray:
        if i >= len(tensors):
            raise FormatError(f"{what}: tensor index {i} out of range")
        t = tensors[i]
        if t.size != int(np.prod(shape)):
            raise FormatError(f"{what}: tensor {i} has {t.size} elements, expected "
                              f"{int(np.prod(shape))}")
        return t.reshape(shape)

    off, size = sections[SECTION_NETWORK]
    cur = _Cursor(data, off, off + size, "NETWORK")

    def conv(what: str) -> Conv:
        v = cur.take("<12I4f4I")
        (groups, cin, cout, k, s, pm, pt, pl, pb, pr, act, fl, a, b, c_, d, wi, bi, r0,
         r1) = v
        if groups not in (0, 1):
            raise FormatError(f"{what}: groups_mode {groups} unknown")
        if fl & ~3:
            raise FormatError(f"{what}: unknown conv flags 0x{fl:x}")
        if pm == PAD_SAME:  # SAME derives the padding; stored pads are ignored, read as 0
            pt = pl = pb = pr = 0
        c = Conv(cin, cout, k, s, bool(groups), pm, (pt, pl, pb, pr), act, bool(fl & 2),
                 (a, b), (c_, d))
        if not (1 <= cin <= MAX_CHANNELS and 1 <= cout <= MAX_CLASSES and
                1 <= k <= MAX_KERNEL):
            raise FormatError(f"{what}: channels or kernel out of range")
        c.weight = tensor(wi, c.weight_shape(), what)
        if fl & 1:
            c.bias = tensor(bi, (cout,), what)
        elif bi != NO_TENSOR:
            raise FormatError(f"{what}: bias tensor given without has_bias")
        return c

    arch, flavor, in_ch, nblocks, nhead, _ = cur.take("<6I")
    if nblocks > MAX_BLOCKS or not 1 <= nhead <= MAX_HEAD:
        raise FormatError(f"{nblocks} blocks / {nhead} head layers out of range")
    stem = conv("stem")
    blocks = []
    for i in range(nblocks):
        (flags,) = cur.take("<I")
        if flags & ~7:
            raise FormatError(f"block {i}: unknown flags 0x{flags:x}")
        rc = cur.take("<2f")
        sq = cur.take("<2f")
        sc = cur.take("<2f")
        expand = conv(f"block {i} expand") if flags & 1 else None
        dw = conv(f"block {i} depthwise")
        se = None
        if flags & 2:
            red = conv(f"block {i} se.reduce")
            exp = conv(f"block {i} se.expand")
            se = SqueezeExcite(red, exp, tuple(sq), tuple(sc))
        proj = conv(f"block {i} project")
        blocks.append(Block(dw, proj, expand, se, bool(flags & 4), tuple(rc)))
    last = conv("last_conv")
    pool = cur.take("<2f")
    head = [conv(f"head {i}") for i in range(nhead)]

    off, size = sections[SECTION_PREPROCESS]
    if size < PREPROCESS_SIZE:
        raise FormatError("PREPROCESS section shorter than 48 bytes")
    h, w, order, layout, scale, m0, m1, m2, s0, s1, s2, _ = struct.unpack_from(
        "<4I7fI", data, off)
    pre = Preprocess(h, w, order, layout, scale, (m0, m1, m2), (s0, s1, s2))

    labels = None
    if SECTION_LABELS in sections:
        off, size = sections[SECTION_LABELS]
        if size < 4:
            raise FormatError("LABELS section truncated")
        (n,) = struct.unpack_from("<I", data, off)
        parts = data[off + 4:off + size].split(b"\0")
        if len(parts) < n + 1 and not (len(parts) == n and n == 0):
            raise FormatError(f"LABELS announces {n} strings, holds fewer")
        labels = [p.decode("utf-8") for p in parts[:n]]

    net = Network(stem, blocks, last, head, tuple(pool), arch, flavor, in_ch, pre, labels)
    if SECTION_QUANT in sections:
        off, size = sections[SECTION_QUANT]
        cur = _Cursor(data, off, off + size, "QUANT")
        s_in, z_in, pmode, s_pool, z_pool, io = cur.take("<fiIfiI")
        net.quant = NetQuant((s_in, z_in), pmode, (s_pool, z_pool), io)
        for b in blocks:
            m, a, az, c_, cz, r, rz, _ = cur.take("<IfififiI")
            b.quant = BlockQuant(m, (a, az), (c_, cz), (r, rz))
        for what, c in zip(net.conv_names(), net.convs()):
            (so, zo, lo, hi, wzp, mode, ws, bs, tb, st, zt, _) = cur.take("<fi3iI3IfiI")
            q = ConvQuant((so, zo), tensor(ws, (c.out_channels,), what),
                          tensor(bs, (c.out_channels,), what) if c.has_bias else None, wzp,
                          (lo, hi), mode, tensor(tb, (256,), what) if tb != NO_TENSOR else None,
                          (st, zt))
            c.quant = q
        if cur.pos != cur.end:
            raise FormatError("QUANT section longer than its content")
    validate(net)
    return net


def read_file(path: str, check_crc: bool = True) -> Network:
    with open(path, "rb") as f:
        return from_bytes(f.read(), check_crc)


def summary(net: Network) -> str:
    inv_a = {v: k for k, v in ARCH.items()}
    inv_f = {v: k for k, v in FLAVOR.items()}
    return (f"{inv_a.get(net.arch, net.arch)}/{inv_f.get(net.flavor, net.flavor)}: "
            f"{len(net.blocks)} blocks, {net.feature_dim} features, {net.num_classes} classes, "
            f"{net.params():,} parameters")
