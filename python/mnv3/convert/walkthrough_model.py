"""MobileNetV3 as the paper's tables describe it, written plainly ("walkthrough" flavor):
channels int(width * c) without rounding, the 1x1 expansion always present, "RE" = ReLU6,
SE = avgpool, FC(C -> C/4, no bias), ReLU6, FC(C/4 -> C, no bias), hard-sigmoid, scale;
BatchNorm eps 1e-5; head 1x1 conv -> BN -> hard-swish, global pool, 1x1 conv with bias ->
hard-swish, 1x1 conv with bias -> classes. Every width is scaled, the head's too: at width w
Large runs int(w*160) -> int(w*960) (second_conv) -> int(w*1280) (third_conv) -> classes,
Small int(w*96) -> int(w*576) -> int(w*1024) -> classes.

State-dict keys: first_conv.{conv,bn}, blocks.N.{conv0,conv1,conv2}.{conv,bn},
blocks.N.semodule.{fc0,fc1}.weight, second_conv.{conv,bn}, third_conv.conv, output.conv."""
from __future__ import annotations

from torch import nn
import torch.nn.functional as F

from .arch import LARGE, SMALL

BN_EPS = 1e-5


class HardSwish(nn.Module):
    def forward(self, x):
        return x * F.relu6(x + 3.0) / 6.0


class HardSigmoid(nn.Module):
    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


def _act(name: str) -> nn.Module:
    return HardSwish() if name == "HS" else nn.ReLU6()


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k=1, s=1, groups=1, act=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = _act(act) if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SEModule(nn.Module):
    def __init__(self, c):
        super().__init__()
        sq = c // 4 or 1
        self.fc0 = nn.Linear(c, sq, bias=False)
        self.act0 = nn.ReLU6()
        self.fc1 = nn.Linear(sq, c, bias=False)
        self.gate = HardSigmoid()

    def forward(self, x):
        s = x.mean(dim=(2, 3))
        s = self.gate(self.fc1(self.act0(self.fc0(s))))
        return x * s[:, :, None, None]


class Block(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride):
        super().__init__()
        self.conv0 = ConvBN(cin, exp, 1, 1, act=act)
        self.conv1 = ConvBN(exp, exp, k, stride, groups=exp, act=act)
        self.semodule = SEModule(exp) if se else None
        self.conv2 = ConvBN(exp, cout, 1, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv1(self.conv0(x))
        if self.semodule is not None:
            y = self.semodule(y)
        y = self.conv2(y)
        return x + y if self.residual else y


class ConvBias(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0, bias=True)

    def forward(self, x):
        return self.conv(x)


class MobileNetV3Walkthrough(nn.Module):
    def __init__(self, arch: str = "large", width_mult: float = 1.0, num_classes: int = 1000,
                 dropout: float = 0.2):
        super().__init__()
        table = {"large": LARGE, "small": SMALL}[arch]

        def ch(c):
            return int(c * width_mult) or 1

        self.first_conv = ConvBN(3, ch(16), 3, 2, act="HS")
        blocks = []
        for cin, k, exp, cout, se, hs, s in table:
            blocks.append(Block(ch(cin), k, ch(exp), ch(cout), se, "HS" if hs else "RE", s))
        self.blocks = nn.ModuleList(blocks)
        last = ch(960 if arch == "large" else 576)
        hidden = ch(1280 if arch == "large" else 1024)
        self.second_conv = ConvBN(ch(table[-1][3]), last, act="HS")
        self.third_conv = ConvBias(last, hidden)
        self.third_act = HardSwish()
        self.dropout = nn.Dropout(dropout)
        self.output = ConvBias(hidden, num_classes)

    def features(self, x):
        """Globally pooled last-conv output, [N, C]."""
        x = self.first_conv(x)
        for b in self.blocks:
            x = b(x)
        x = self.second_conv(x)
        return x.mean(dim=(2, 3))

    def forward(self, x):
        f = self.features(x)[:, :, None, None]
        y = self.output(self.dropout(self.third_act(self.third_conv(f))))
        return y.flatten(1)


def mobilenet_v3_walkthrough(arch="large", width_mult=1.0, num_classes=1000):
    return MobileNetV3Walkthrough(arch, width_mult, num_classes)
