"""The built-in MobileNetV3 architectures as data, mirroring csrc/builtin.c exactly, plus
the state-dict key names of the torchvision and walkthrough PyTorch models.

    net, slots = describe("large", "torchvision", width=1.0, classes=1000)

`net` is a Network whose convs have no weights yet; `slots` lists, in canonical conv order,
which state-dict keys feed each conv."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .modelfile import (ACT_HARD_SIGMOID, ACT_HARD_SWISH, ACT_NONE, ACT_RELU, ACT_RELU6, ARCH,
                        FLAVOR, PAD_EXPLICIT, Block, Conv, Network, Preprocess, SqueezeExcite)

# (in, kernel, expanded, out, se, hard_swish, stride): the paper's tables 1 and 2.
LARGE = [
    (16, 3, 16, 16, 0, 0, 1), (16, 3, 64, 24, 0, 0, 2), (24, 3, 72, 24, 0, 0, 1),
    (24, 5, 72, 40, 1, 0, 2), (40, 5, 120, 40, 1, 0, 1), (40, 5, 120, 40, 1, 0, 1),
    (40, 3, 240, 80, 0, 1, 2), (80, 3, 200, 80, 0, 1, 1), (80, 3, 184, 80, 0, 1, 1),
    (80, 3, 184, 80, 0, 1, 1), (80, 3, 480, 112, 1, 1, 1), (112, 3, 672, 112, 1, 1, 1),
    (112, 5, 672, 160, 1, 1, 2), (160, 5, 960, 160, 1, 1, 1), (160, 5, 960, 160, 1, 1, 1),
]
SMALL = [
    (16, 3, 16, 16, 1, 0, 2), (16, 3, 72, 24, 0, 0, 2), (24, 3, 88, 24, 0, 0, 1),
    (24, 5, 96, 40, 1, 1, 2), (40, 5, 240, 40, 1, 1, 1), (40, 5, 240, 40, 1, 1, 1),
    (40, 5, 120, 48, 1, 1, 1), (48, 5, 144, 48, 1, 1, 1), (48, 5, 288, 96, 1, 1, 2),
    (96, 5, 576, 96, 1, 1, 1), (96, 5, 576, 96, 1, 1, 1),
]

BN_EPS = {"torchvision": 1e-3, "walkthrough": 1e-5}


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible."""
    r = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if r < 0.9 * v:
        r += divisor
    return r


@dataclass
class Slot:
    """Where one conv's parameters live in a state dict."""
    name: str                      # canonical conv name ("block 3 expand")
    weight: str                    # key of the weight
    bn: Optional[str] = None       # prefix of a BatchNorm to fold (".weight", ".bias", ...)
    bias: Optional[str] = None     # key of a plain bias
    torch_shape: Tuple[int, ...] = ()
    fc: bool = False               # a fully connected layer: [out, in] or [out, in, 1, 1]


def _conv(cin, cout, k=1, s=1, dw=False, act=ACT_NONE, bn=True) -> Conv:
    p = (k - 1) // 2
    return Conv(cin, cout, k, s, dw, PAD_EXPLICIT, (p, p, p, p), act, bn)


def describe(arch: str, flavor: str, width: float = 1.0,
             classes: int = 1000) -> Tuple[Network, List[Slot]]:
    if arch not in ("large", "small"):
        raise ValueError(f"arch must be large or small, not {arch!r}")
    if flavor not in ("torchvision", "walkthrough"):
        raise ValueError(f"flavor must be torchvision or walkthrough, not {flavor!r}")
    if not 0 < width <= 4:
        raise ValueError(f"width multiplier {width} not in (0, 4]")
    if classes < 1:
        raise ValueError("classes must be >= 1")
    tv = flavor == "torchvision"
    table = LARGE if arch == "large" else SMALL

    def ch(c: int) -> int:
        if tv:
            return make_divisible(c * width, 8)
        return int(c * width) or 1

    relu = ACT_RELU if tv else ACT_RELU6
    slots: List[Slot] = []

    def slot(conv: Conv, name: str, weight: str, bn=None, bias=None, fc=False):
        if conv.depthwise:
            shape = (conv.out_channels, 1, conv.kernel, conv.kernel)
        elif fc:
            shape = (conv.out_channels, conv.in_channels)
        else:
            shape = (conv.out_channels, conv.in_channels, conv.kernel, conv.kernel)
        slots.append(Slot(name, weight, bn, bias, shape, fc))

    c = ch(16)
    stem = _conv(3, c, 3, 2, act=ACT_HARD_SWISH)
    if tv:
        slot(stem, "stem", "features.0.0.weight", "features.0.1")
    else:
        slot(stem, "stem", "first_conv.conv.weight", "first_conv.bn")
    blocks = []
    for i, (cin, k, exp, cout, se, hs, s) in enumerate(table):
        cin, exp, cout = ch(cin), ch(exp), ch(cout)
        act = ACT_HARD_SWISH if hs else relu
        has_expand = (not tv) or exp != cin
        pre = f"features.{i + 1}.block" if tv else f"blocks.{i}"
        j = 0
        expand = None
        if has_expand:
            expand = _conv(cin, exp, act=act)
            if tv:
                slot(expand, f"block {i} expand", f"{pre}.{j}.0.weight", f"{pre}.{j}.1")
            else:
                slot(expand, f"block {i} expand", f"{pre}.conv0.conv.weight", f"{pre}.conv0.bn")
            j += 1
        dw = _conv(exp, exp, k, s, dw=True, act=act)
        if tv:
            slot(dw, f"block {i} depthwise", f"{pre}.{j}.0.weight", f"{pre}.{j}.1")
        else:
            slot(dw, f"block {i} depthwise", f"{pre}.conv1.conv.weight", f"{pre}.conv1.bn")
        j += 1
        sq = None
        if se:
            n = make_divisible(exp // 4, 8) if tv else (exp // 4 or 1)
            red = _conv(exp, n, act=relu, bn=False)
            ex = _conv(n, exp, act=ACT_HARD_SIGMOID, bn=False)
            if tv:
                slot(red, f"block {i} se.reduce", f"{pre}.{j}.fc1.weight",
                     bias=f"{pre}.{j}.fc1.bias")
                slot(ex, f"block {i} se.expand", f"{pre}.{j}.fc2.weight",
                     bias=f"{pre}.{j}.fc2.bias")
            else:
                slot(red, f"block {i} se.reduce", f"{pre}.semodule.fc0.weight", fc=True)
                slot(ex, f"block {i} se.expand", f"{pre}.semodule.fc1.weight", fc=True)
            j += 1
            sq = SqueezeExcite(red, ex)
        proj = _conv(exp, cout)
        if tv:
            slot(proj, f"block {i} project", f"{pre}.{j}.0.weight", f"{pre}.{j}.1")
        else:
            slot(proj, f"block {i} project", f"{pre}.conv2.conv.weight", f"{pre}.conv2.bn")
        blocks.append(Block(dw, proj, expand, sq, s == 1 and cin == cout))
        c = cout
    if tv:
        last_ch = 6 * c
        hidden = make_divisible((1280 if arch == "large" else 1024) * width, 8)
    else:
        last_ch = ch(960 if arch == "large" else 576)
        hidden = ch(1280 if arch == "large" else 1024)  # the head is scaled too
    last = _conv(c, last_ch, act=ACT_HARD_SWISH)
    h0 = _conv(last_ch, hidden, act=ACT_HARD_SWISH, bn=False)
    h1 = _conv(hidden, classes, bn=False)
    if tv:
        slot(last, "last_conv", f"features.{len(table) + 1}.0.weight", f"features.{len(table) + 1}.1")
        slot(h0, "head 0", "classifier.0.weight", bias="classifier.0.bias", fc=True)
        slot(h1, "head 1", "classifier.3.weight", bias="classifier.3.bias", fc=True)
    else:
        slot(last, "last_conv", "second_conv.conv.weight", "second_conv.bn")
        slot(h0, "head 0", "third_conv.conv.weight", bias="third_conv.conv.bias")
        slot(h1, "head 1", "output.conv.weight", bias="output.conv.bias")
    net = Network(stem, blocks, last, [h0, h1], arch=ARCH[arch], flavor=FLAVOR[flavor],
                  preprocess=Preprocess())
    names = net.conv_names()
    assert [s.name for s in slots] == names, (names, [s.name for s in slots])
    return net, slots


def torch_param_count(slots: List[Slot]) -> int:
    """Parameters the PyTorch model has (BatchNorm weight + bias, plain biases)."""
    n = 0
    for s in slots:
        out = s.torch_shape[0]
        k = 1
        for d in s.torch_shape:
            k *= d
        n += k + (2 * out if s.bn else 0) + (out if s.bias else 0)
    return n
