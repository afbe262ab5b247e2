#!/usr/bin/env python3
"""Static estimate of the SIMD microkernels' inner-loop efficiency with llvm-mca.

Reads the assembly that the compiler makes of a kernel source (`make mca` produces it with
the library's own compiler and flags), finds the innermost loops of the microkernel
functions, runs each loop body through llvm-mca for several core models, and compares the
modelled cycles per iteration with the bound set by the core's multiply-accumulate pipes:

    bound    = multiply-accumulate instructions per iteration / MAC pipes for their width
    fraction = bound / (llvm-mca Total Cycles / Iterations)

A fraction of 1.0 means the loop issues a multiply-accumulate on every MAC pipe every cycle
in steady state; anything else in the loop (loads, broadcasts, address arithmetic, the loop
branch) only costs if it lengthens the schedule.

An innermost loop is a label that is the target of a backward conditional branch, with no
other backward branch between the two; the instructions from the label to the branch are
one iteration. Forward branches inside the body (an `if` in the loop) are not followed:
llvm-mca runs the body as straight-line code, every path included; such loops are marked.

    tools/mca_report.py --kernels avx512 x86-avx512 build/asm/x86_avx512.s \\
                        --kernels neon-a64 aarch64 build-aarch64-linux-gnu/asm/arm_neon.s \\
                        [--functions REGEX] [--op-map 'REGEX=op,...'] [-o report.md]

Everything here is a model, not a measurement: see docs/benchmarks.md ("Static estimates").
Only the Python standard library is used.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_FUNCTIONS = r"^mnv3_[a-z0-9]+_(gemm|dwconv|conv|gemv)"
# Steady state: with a few hundred iterations the pipeline's fill and drain change cycles
# per iteration by well under 1 %; long bodies get fewer to keep the run short.
DEFAULT_ITERATIONS = 1000
LONG_BODY, LONG_ITERATIONS = 100, 300
CALIB_ITERATIONS = 10000

# ------------------------------------------------------------------------------------------
# Core models and their multiply-accumulate pipes
# ------------------------------------------------------------------------------------------
# Pipes are keyed by the vector width of the instruction in bits (0 = scalar): how many
# multiply-accumulate instructions of that width the core can start per cycle. They come
# from the vendors' optimization guides, not from LLVM, so the bound stays the hardware's
# even where LLVM's scheduling model is off (the "model check" table shows where it is).
#
# | core            | width | pipes | source |
# |-----------------|-------|-------|--------|
# | skylake-avx512  | 512   | 2     | Intel optimization manual: 512-bit FMA on port 0 (ports 0+1 fused) and port 5; Xeon Gold 6xxx / Platinum (some Silver / Bronze / Gold 5xxx parts have only the first) |
# | icelake-server  | 512   | 2     | as Skylake-SP for Xeon Gold / Platinum Ice Lake-SP |
# | znver4          | 512   | 1     | AMD Zen 4 optimization guide: two 256-bit FMA pipes (FP0, FP1); a 512-bit FMA takes both halves, one per cycle |
# | znver5          | 512   | 2     | AMD Zen 5 optimization guide: two 512-bit FMA pipes (server and desktop parts; mobile ones split 512-bit operations) |
# | haswell         | 256   | 2     | Intel optimization manual: FMA on ports 0 and 1 |
# | znver3          | 256   | 2     | AMD Zen 3 optimization guide: FMA on FP0 and FP1, 256 bits wide |
# | cortex-a53      | 128   | 1     | no public Arm guide; LLVM's A53 model and A53-tuned kernels (ncnn, XNNPACK) issue one 128-bit FMLA per cycle |
# | cortex-a55      | 128   | 1     | Arm Cortex-A55 optimization guide: FP multiply-accumulate Q-form throughput 1 (it uses both 64-bit pipes), D-form 2 |
# | cortex-a72      | 128   | 1     | Arm Cortex-A72 optimization guide: Q-form FP multiply-accumulate is split over F0/F1, one per cycle; D-form 2 |
# | cortex-a76      | 128   | 2     | Arm Cortex-A76 optimization guide: V0 and V1 both execute 128-bit FMLA |
# | neoverse-n1     | 128   | 2     | Arm Neoverse N1 optimization guide: as Cortex-A76 |
#
# The Cortex-A53 and A72 figures are the least certain (no public A53 guide; LLVM's two A57
# models, which serve the A72, disagree: 1 Q-form FMLA per cycle for AArch64, 2 VFMA for
# AArch32). AArch32 code on these cores runs on the same pipes (VFMA/VMLA .F32 Q-form =
# FMLA .4S). bfloat16 dot products (vdpbf16ps, bfdot, fmla .8h) are counted against the
# pipes of a float FMA of the same width.
#
# Integer multiply-accumulates (the int8 kernels) have pipes of their own, `int_pipes`,
# keyed by width like `pipes`, and count their lane MACs as the kernels use them:
# vpdpbusd 4 per 32-bit lane (zmm 64, ymm 32), vpmaddwd 2 per 32-bit lane (ymm 16), sdot 4
# per 32-bit lane (16), smmla 32, smlal/smlal2 and vmlal.s16 one per 32-bit lane (4),
# smull/vmull of bytes one per 16-bit lane (8; the pairwise add that accumulates the
# products, sadalp, is not counted).
#
# | core            | int8 instruction (width)   | pipes | source |
# |-----------------|----------------------------|-------|--------|
# | skylake-avx512  | vpdpbusd zmm (Cascade Lake) | 2     | as its 512-bit FMA (p0+p1, p5): VNNI runs on the FMA units |
# | icelake-server  | vpdpbusd zmm               | 2     | as above |
# | sapphirerapids  | vpdpbusd zmm               | 2     | as above |
# | znver4          | vpdpbusd zmm               | 1     | two 256-bit halves, like a 512-bit FMA |
# | znver5          | vpdpbusd zmm               | 2     | two 512-bit pipes |
# | alderlake       | vpdpbusd ymm (AVX-VNNI)    | 2     | p0, p1 as its 256-bit FMA |
# | haswell         | vpmaddwd ymm               | 1     | Intel optimization manual: vector integer multiply on p0 only (p0, p1 from Skylake) |
# | znver3          | vpmaddwd ymm               | 2     | AMD Zen 3: integer multiply on FP0 and FP3; measured here with vpaddd beside it: 1.55 per cycle (mnv3tools_int8_peak_gops) |
# | cortex-a53      | smlal .4s                  | 1     | one 128-bit integer multiply-accumulate per cycle (no SDOT on this core) |
# | cortex-a55      | sdot / smlal .4s           | 1     | Arm Cortex-A55 optimization guide: Q-form integer dot product and multiply-accumulate throughput 1 |
# | cortex-a72      | smlal .4s                  | 1     | Arm Cortex-A72 optimization guide: integer multiply-accumulate on F0 (no SDOT on this core) |
# | cortex-a76      | sdot .4s / smlal .4s       | 2 / 1 | Arm Cortex-A76 optimization guide: dot product on V0 and V1, integer multiply-accumulate long on V0 |
# | neoverse-n1     | sdot .4s / smlal .4s       | 2 / 1 | as Cortex-A76 |
#
# The int8 figures are the least certain of all; the measured int8 peak (bench/bench.c,
# `mnv3 bench`) is the reference for what a core really sustains.


@dataclass
class Core:
    cpu: str
    pipes: Dict[int, int]
    note: str
    int_pipes: Dict[int, int] = field(default_factory=dict)  # {width: pipes}; see the table
    # integer instructions (by mnemonic prefix) with their own pipe count on this core
    int_pipes_by_mnem: Dict[str, int] = field(default_factory=dict)
    # instructions the core does not have: loops using them are not modelled on it
    lacks: Tuple[str, ...] = ()


X86_512 = {512: 2, 256: 2, 128: 2, 0: 2}
CORES: Dict[str, List[Core]] = {
    "x86-avx512": [
        Core("skylake-avx512", X86_512, "2 x 512-bit FMA (p0+p1, p5)", X86_512),
        Core("icelake-server", X86_512, "2 x 512-bit FMA (p0+p1, p5)", X86_512),
        Core("sapphirerapids", X86_512, "2 x 512-bit FMA (p0+p1, p5)", X86_512),
        Core("znver4", {512: 1, 256: 2, 128: 2, 0: 2}, "2 x 256-bit FMA; zmm FMA 1/cycle",
             {512: 1, 256: 2, 128: 2}),
        Core("znver5", X86_512, "2 x 512-bit FMA", X86_512),
    ],
    "x86-avx2": [
        Core("haswell", {256: 2, 128: 2, 0: 2}, "2 x 256-bit FMA (p0, p1)", {256: 1, 128: 1}),
        Core("znver3", {256: 2, 128: 2, 0: 2}, "2 x 256-bit FMA (FP0, FP1)", {256: 2, 128: 2}),
    ],
    "x86-avxvnni": [
        Core("alderlake", {256: 2, 128: 2, 0: 2}, "2 x 256-bit FMA (p0, p1)", {256: 2, 128: 2}),
    ],
    "aarch64": [
        Core("cortex-a53", {128: 1, 64: 1, 0: 1}, "1 x 128-bit FMLA", {128: 1},
             lacks=("sdot", "udot", "smmla", "ummla", "usmmla", "fp16")),
        Core("cortex-a55", {128: 1, 64: 2, 0: 2}, "1 x 128-bit FMLA (2 x 64-bit)", {128: 1},
             lacks=("smmla", "ummla", "usmmla")),
        Core("cortex-a72", {128: 1, 64: 2, 0: 2}, "1 x 128-bit FMLA (2 x 64-bit)", {128: 1},
             lacks=("sdot", "udot", "smmla", "ummla", "usmmla", "fp16")),
        Core("cortex-a76", {128: 2, 64: 2, 0: 2}, "2 x 128-bit FMLA (V0, V1)", {128: 2},
             {"smlal": 1, "smull": 1}, lacks=("smmla", "ummla", "usmmla")),
        Core("neoverse-n1", {128: 2, 64: 2, 0: 2}, "2 x 128-bit FMLA (V0, V1)", {128: 2},
             {"smlal": 1, "smull": 1}, lacks=("smmla", "ummla", "usmmla")),
    ],
    "armv7": [
        Core("cortex-a53", {128: 1, 64: 1, 0: 1}, "1 x 128-bit VFMA/VMLA", {128: 1}),
        Core("cortex-a55", {128: 1, 64: 2, 0: 2}, "1 x 128-bit VFMA/VMLA (2 x 64-bit)", {128: 1}),
        Core("cortex-a72", {128: 1, 64: 2, 0: 2}, "1 x 128-bit VFMA/VMLA (2 x 64-bit)", {128: 1}),
        Core("neoverse-n1", {128: 2, 64: 2, 0: 2}, "2 x 128-bit VFMA/VMLA (V0, V1)", {128: 2},
             {"smlal": 1, "vmull": 1}),
    ],
}

# Share of MobileNetV3-Large's multiply-accumulates at 224x224 (216.6 M in all, torchvision
# layout: python/mnv3/convert/arch.py), by the kernel that runs them. gemm: every 1x1 convolution
# (expansions, projections, the last conv 160->960); dwconv: the 3x3 and 5x5 depthwise
# layers; conv: the 3x3 stride-2 stem (3->16); gemv: the squeeze-excite layers and the
# classifier (960->1280->1000), which run as matrix-vector products.
MAC_SHARE_LARGE_224 = {"gemm": 0.8715, "dwconv": 0.0849, "conv": 0.0250, "gemv": 0.0185}
OPS = ("gemm", "dwconv", "conv", "gemv")

# ------------------------------------------------------------------------------------------
# Instruction sets: assembler syntax, branches, multiply-accumulates
# ------------------------------------------------------------------------------------------
COND_ARM = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le"


@dataclass
class Isa:
    name: str
    triple: str
    comment: str            # line comment of the assembler, for the region markers
    mattr: str = ""
    calib: Dict[str, List[str]] = field(default_factory=dict)
    requires: str = ""      # a CPU feature every function of the set needs (Core.lacks)


def _x86_calib(reg: str, n: int, mnem: str = "vfmadd231ps") -> List[str]:
    return [f"{mnem} %{reg}{n}, %{reg}{n + 1}, %{reg}{i}" for i in range(n)]


# Each multiply-accumulate instruction the sets' loops use gets its own check: LLVM's models
# cost the integer ones differently from the FMAs (LLVM 19's Zen 4 model allows half a
# vpdpbusd a cycle and one zmm FMA; its Ice Lake model two vpdpbusd and one zmm FMA), and a
# set's ceiling is the one of the instructions it multiplies with.
ISAS: Dict[str, Isa] = {
    "x86-avx512": Isa("x86-avx512", "x86_64-linux-gnu", "#", calib={
        "zmm FMA": _x86_calib("zmm", 24),
        "zmm vpdpbusd": _x86_calib("zmm", 24, "vpdpbusd"),
        "zmm vdpbf16ps": _x86_calib("zmm", 24, "vdpbf16ps"),
    }),
    "x86-avx2": Isa("x86-avx2", "x86_64-linux-gnu", "#", calib={
        "ymm FMA": _x86_calib("ymm", 12),
        "ymm vpmaddwd": _x86_calib("ymm", 12, "vpmaddwd"),
    }),
    "x86-avxvnni": Isa("x86-avxvnni", "x86_64-linux-gnu", "#", mattr="+avxvnni", calib={
        "ymm FMA": _x86_calib("ymm", 12),
        "ymm vpdpbusd": _x86_calib("ymm", 12, "{vex} vpdpbusd"),
    }),
    "aarch64": Isa("aarch64", "aarch64-linux-gnu", "//", mattr="+dotprod,+i8mm", calib={
        "fmla .4s": [f"fmla v{i}.4s, v28.4s, v29.4s" for i in range(24)],
        "fmla .4s by element": [f"fmla v{i}.4s, v28.4s, v29.s[{i % 4}]" for i in range(24)],
        "sdot .4s": [f"sdot v{i}.4s, v28.16b, v29.16b" for i in range(24)],
        "smlal .4s": [f"smlal v{i}.4s, v28.4h, v29.4h" for i in range(24)],
    }),
    "armv7": Isa("armv7", "armv7a-linux-gnueabihf", "@", mattr="+neon,+vfp4", calib={
        "vfma.f32 q": [f"vfma.f32 q{i}, q12, q13" for i in range(12)],
        "vmla.f32 q by scalar": [f"vmla.f32 q{i}, q8, d15[{i % 2}]" for i in range(6)],
        "vmlal.s16 q": [f"vmlal.s16 q{i}, d28, d29" for i in range(12)],
    }),
}


FP16_ARITH = re.compile(r"^f(mla|mls|mul|add|sub|max|min)\s+v\d+\.[48]h\b")
INT_MACS = re.compile(r"^(\{vex\})?(vpdpbusds?|vpdpwssds?|vpmaddwd)$|^(sdot|udot|usdot|sudot|"
                      r"smmla|ummla|usmmla|[su]mlal2?|[su]mull2?|vmlal\.[su](8|16|32)|"
                      r"vmull\.[su]8)$")


def mac_key(isa: str, mnem: str, width: int):
    """The pipes a multiply-accumulate of this width competes for: the width itself for
    floating point, ('int', width, mnemonic) for integer ones (Core.int_pipes)."""
    if INT_MACS.match(mnem):
        name = re.sub(r"^\{vex\}", "", mnem)
        return ("int", width, re.sub(r"^([su]mlal|[su]mull)2$", r"\1", name))
    return width


def calib_key(isa: str, text: str):
    """The pipe key (mac_key) of a calibration instruction."""
    parts = text.split(None, 1)
    mnem, ops = parts[0], parts[1] if len(parts) > 1 else ""
    if mnem == "{vex}":
        parts = ops.split(None, 1)
        mnem, ops = parts[0], parts[1] if len(parts) > 1 else ""
    mi = mac_info(isa, mnem, ops)
    return mac_key(isa, mnem, mi[0]) if mi else None


def pipes_for(core: "Core", key) -> float:
    if isinstance(key, tuple):
        _, width, mnem = key
        for prefix, n in core.int_pipes_by_mnem.items():
            if mnem.startswith(prefix):
                return n
        return core.int_pipes.get(width, core.int_pipes.get(128, core.pipes.get(width, 1)))
    return core.pipes.get(key, core.pipes.get(128, 1))


def mac_info(isa: str, mnem: str, ops: str) -> Optional[Tuple[int, int]]:
    """(vector width in bits, 0 for scalar; lane multiply-accumulates) of a
    multiply-accumulate instruction, or None for any other instruction."""
    if isa.startswith("x86"):
        if mnem == "{vex}":  # "{vex} vpdpbusd ...": the prefix parses as the mnemonic
            parts = ops.split(None, 1)
            mnem, ops = parts[0], parts[1] if len(parts) > 1 else ""
        m = re.match(r"v(fn?m(add|sub)(132|213|231)(ps|pd|ss|sd)|fmaddsub\d+p[sd]|fmsubadd\d+p[sd]"
                     r"|pdpbusds?|pdpwssds?|dpbf16ps|pmaddwd)$", mnem)
        if not m:
            return None
        if mnem.endswith(("ss", "sd")) and "fm" in mnem:
            return 0, 1
        width = 512 if "%zmm" in ops else 256 if "%ymm" in ops else 128
        if mnem.startswith(("vpdpbusd",)):
            per = 8
        elif mnem.startswith(("vpdpwssd", "vdpbf16ps", "vpmaddwd")):
            per = 16
        else:
            per = 64 if mnem.endswith("pd") else 32
        return width, width // per
    if isa == "aarch64":
        if re.match(r"^[su]mlal2?$", mnem):
            return 128, 4 if ".4s" in ops.split(",")[0] else 8 if ".8h" in ops.split(",")[0] else 2
        if re.match(r"^[su]mull2?$", mnem) and ".8h" in ops.split(",")[0]:
            return 128, 8  # bytes multiplied into 16-bit lanes: an int8 kernel's products
        if mnem in ("fmla", "fmls"):
            arr = re.search(r"\.(\d+)([bhsd])\b", ops.split(",")[0])
            if not arr:  # scalar by-element: fmla s0, s1, v2.s[0]
                return 0, 1
            lanes, t = int(arr.group(1)), arr.group(2)
            bits = {"h": 16, "s": 32, "d": 64}[t]
            return lanes * bits, lanes
        if mnem in ("fmadd", "fmsub", "fnmadd", "fnmsub"):
            return 0, 1
        if mnem in ("sdot", "udot", "usdot", "sudot", "bfdot", "smmla", "ummla", "usmmla",
                    "bfmmla", "bfmlalb", "bfmlalt"):
            wide = re.search(r"\.(\d+)[bhsd]\b", ops.split(",")[0])
            width = 128 if not wide or int(wide.group(1)) * 32 >= 128 else 64
            per = {"sdot": 8, "udot": 8, "usdot": 8, "sudot": 8, "bfdot": 16,
                   "smmla": 4, "ummla": 4, "usmmla": 4, "bfmmla": 8,
                   "bfmlalb": 32, "bfmlalt": 32}[mnem]
            return width, width // per
        return None
    if isa == "armv7":
        m = re.match(r"vmlal\.[su](8|16|32)$", mnem)
        if m:
            return 128, 128 // (2 * int(m.group(1)))
        if re.match(r"vmull\.[su]8$", mnem):
            return 128, 8
        m = re.match(r"v(fma|fms|mla|mls|fnma|fnms)\.f(32|16)$", mnem)
        if not m:
            return None
        dst = ops.split(",")[0].strip()
        if dst.startswith("q"):
            width = 128
        elif dst.startswith("d"):
            width = 64
        else:
            return 0, 1
        return width, width // int(m.group(2))
    raise ValueError(isa)


def branch_info(isa: str, mnem: str, ops: str) -> Optional[Tuple[bool, Optional[str]]]:
    """(conditional, target label or None when indirect) of a branch, None otherwise."""
    target = ops.split(",")[-1].strip() if ops else ""
    if not re.match(r"^[.\w$]+$", target):
        target = None
    if isa.startswith("x86"):
        if not mnem.startswith("j"):
            return None
        return mnem != "jmp", target
    if isa == "aarch64":
        if mnem == "b":
            return False, target
        if re.match(rf"b\.?({COND_ARM})$", mnem) or mnem in ("cbz", "cbnz", "tbz", "tbnz"):
            return True, target
        return None
    if isa == "armv7":
        base = re.sub(r"\.[wn]$", "", mnem)
        if base == "b":
            return False, target
        if re.match(rf"b({COND_ARM})$", base) or base in ("cbz", "cbnz"):
            return True, target
        return None
    raise ValueError(isa)


# ------------------------------------------------------------------------------------------
# Assembly parsing and loop finding
# ------------------------------------------------------------------------------------------
@dataclass
class Line:
    label: Optional[str] = None
    mnem: str = ""
    ops: str = ""
    text: str = ""


@dataclass
class Loop:
    function: str
    index: int              # 1-based, in address order within the function
    label: str
    body: List[str]         # instruction texts, label line excluded, closing branch included
    macs_by_width: Dict[object, int]  # width (float) or ("int", width, mnemonic)
    lane_macs: int
    forward_branches: int   # conditional branches inside the body besides the closing one
    op: str = "other"

    @property
    def mac_ops(self) -> int:
        return sum(self.macs_by_width.values())

    @property
    def name(self) -> str:
        return f"{self.function}#{self.index}"


SUFFIX = re.compile(r"\.(constprop|isra|part|cold|lto_priv|localalias)(\.\d+)?")


def base_name(fn: str) -> str:
    return SUFFIX.sub("", fn)


def strip_comment(text: str, isa: str) -> str:
    if isa.startswith("x86"):
        return text.split("#", 1)[0]
    if isa == "aarch64":
        return text.split("//", 1)[0]
    return text.split("@", 1)[0]


def thumb_code(path: str) -> bool:
    """Whether GCC wrote Thumb-2 code (the default of Debian's armhf compiler)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(re.match(r"\s*\.thumb\b", t) for t in f)


def parse_functions(path: str, isa: str) -> Dict[str, List[Line]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read().splitlines()
    fnames = set()
    for t in raw:
        m = re.match(r"\s*\.type\s+([^,\s]+)\s*,\s*[@%]function", t)
        if m:
            fnames.add(m.group(1))
    funcs: Dict[str, List[Line]] = {}
    cur: Optional[str] = None
    for t in raw:
        m = re.match(r"\s*\.size\s+([^,\s]+)\s*,", t)
        if m and cur and m.group(1) == cur:
            cur = None
            continue
        s = strip_comment(t, isa).strip()
        if not s:
            continue
        m = re.match(r"^([.\w$]+):(.*)$", s)
        if m:
            if m.group(1) in fnames:
                cur = m.group(1)
                funcs[cur] = []
                continue
            if cur:
                funcs[cur].append(Line(label=m.group(1)))
            s = m.group(2).strip()
            if not s:
                continue
        if cur is None or s.startswith("."):
            continue
        parts = s.split(None, 1)
        funcs[cur].append(Line(mnem=parts[0].lower(), ops=parts[1] if len(parts) > 1 else "",
                               text=s))
    return funcs


def find_loops(fn: str, lines: List[Line], isa: str) -> List[Loop]:
    label_at = {ln.label: i for i, ln in enumerate(lines) if ln.label}
    branches = []  # (position, conditional, target position or None)
    for i, ln in enumerate(lines):
        if ln.label:
            continue
        b = branch_info(isa, ln.mnem, ln.ops)
        if b:
            cond, target = b
            branches.append((i, cond, label_at.get(target) if target else None))
    backward = [(i, t) for i, _, t in branches if t is not None and t < i]
    loops: List[Loop] = []
    for i, cond, t in branches:
        if not cond or t is None or t >= i:
            continue
        if any(t < j < i for j, _ in backward):
            continue  # another backward branch inside: not innermost
        body = [ln for ln in lines[t + 1:i + 1] if not ln.label]
        widths: Dict[int, int] = {}
        lanes = 0
        for ln in body:
            mi = mac_info(isa, ln.mnem, ln.ops)
            if mi:
                mnem = ln.ops.split(None, 1)[0] if ln.mnem == "{vex}" and ln.ops else ln.mnem
                key = mac_key(isa, mnem, mi[0])
                widths[key] = widths.get(key, 0) + 1
                lanes += mi[1]
        fwd = sum(1 for j, c, tt in branches if t < j < i and c)
        loops.append(Loop(fn, 0, lines[t].label, [ln.text for ln in body], widths, lanes, fwd))
    loops.sort(key=lambda lp: label_at[lp.label])
    for n, lp in enumerate(loops, 1):
        lp.index = n
    return loops


# ------------------------------------------------------------------------------------------
# llvm-mca
# ------------------------------------------------------------------------------------------
def mca_version(exe: str) -> Tuple[Tuple[int, ...], str]:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return (), ""
    m = re.search(r"LLVM version (\d+)\.(\d+)\.(\d+)", out)
    return (tuple(int(x) for x in m.groups()), m.group(0).split()[-1]) if m else ((), "")


def find_llvm_mca(explicit: Optional[str]) -> Optional[Tuple[str, str]]:
    """(path, version) of the newest llvm-mca found, or of the one asked for."""
    if explicit:
        path = shutil.which(explicit) or (explicit if os.path.exists(explicit) else None)
        if not path:
            return None
        v = mca_version(path)
        return (path, v[1]) if v[0] else None
    cands = []
    for n in range(30, 9, -1):
        cands += [f"llvm-mca-{n}", f"/usr/lib/llvm-{n}/bin/llvm-mca"]
    cands.append("llvm-mca")
    best = None
    for c in cands:
        path = shutil.which(c) or (c if os.path.isabs(c) and os.access(c, os.X_OK) else None)
        if not path:
            continue
        v = mca_version(path)
        if v[0] and (best is None or v[0] > best[0]):
            best = (v[0], path, v[1])
    return (best[1], best[2]) if best else None


def mca_cpus(exe: str, isa: Isa) -> List[str]:
    out = subprocess.run([exe, f"-mtriple={isa.triple}", "-mcpu=help"], input="",
                         capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    text = text.split("Available features", 1)[0]
    return re.findall(r"^\s+([\w.-]+)\s+-\s", text, re.M)


def run_mca(exe: str, isa: Isa, cpu: str, regions: Sequence[Tuple[str, List[str]]],
            iterations: int, resources: bool = False) -> Dict[str, dict]:
    """Runs the regions (name, instruction texts) in one llvm-mca call; returns, per region,
    {'cycles': cycles per iteration, 'rthroughput': ..., 'resources': [...]} or
    {'error': message}. Falls back to one call per region when the batch fails."""
    def once(regs):
        src = []
        for name, body in regs:
            src.append(f"{isa.comment} LLVM-MCA-BEGIN {name}")
            src += body
            src.append(f"{isa.comment} LLVM-MCA-END {name}")
        with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
            f.write("\n".join(src) + "\n")
            tmp = f.name
        try:
            cmd = [exe, f"-mtriple={isa.triple}", f"-mcpu={cpu}", f"-iterations={iterations}",
                   "-instruction-info=false", f"-resource-pressure={'true' if resources else 'false'}",
                   tmp]
            if isa.mattr:
                cmd.insert(3, f"-mattr={isa.mattr}")
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        finally:
            os.unlink(tmp)
        return p

    def parse(text):
        res = {}
        chunks = re.split(r"^\[\d+\] Code Region - ", text, flags=re.M)
        for ch in chunks[1:]:
            name = ch.split("\n", 1)[0].strip()
            it = re.search(r"^Iterations:\s+(\d+)", ch, re.M)
            cyc = re.search(r"^Total Cycles:\s+(\d+)", ch, re.M)
            rt = re.search(r"^Block RThroughput:\s+([\d.]+)", ch, re.M)
            resn = re.findall(r"^\[\d+\.?\d*\]\s+-\s+(\S+)", ch, re.M)
            if it and cyc:
                res[name] = {"cycles": int(cyc.group(1)) / int(it.group(1)),
                             "rthroughput": float(rt.group(1)) if rt else None,
                             "resources": resn}
        return res

    p = once(regions)
    if p.returncode == 0:
        got = parse(p.stdout)
        if len(regions) == 1 and not got and p.stdout:
            # a single region without markers is reported without a header
            got = parse("[0] Code Region - " + regions[0][0] + "\n" + p.stdout)
        if all(n in got for n, _ in regions):
            return got
    if len(regions) == 1:
        err = (p.stderr or p.stdout).strip().splitlines()
        msg = next((e for e in err if "error" in e), err[0] if err else "llvm-mca failed")
        return {regions[0][0]: {"error": msg.strip()}}
    out: Dict[str, dict] = {}
    for r in regions:
        out.update(run_mca(exe, isa, cpu, [r], iterations, resources))
    return out


MODEL_PREFIX = re.compile(r"^(.+?)(Unit|Port|ALU|AGU|FP|LS|Load|Store|Div)")


def model_name(resources: List[str]) -> str:
    """A short name of LLVM's scheduling model from its resource names (A57UnitB -> A57)."""
    for r in resources:
        m = MODEL_PREFIX.match(r)
        if m and m.group(1):
            return m.group(1).rstrip("_")
    return "?"


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
def harmonic(pairs: Sequence[Tuple[float, float]]) -> Optional[float]:
    """Weighted harmonic mean of fractions: total bound time over total modelled time when
    each item does its weight's share of the work."""
    pairs = [(w, f) for w, f in pairs if w > 0 and f and f > 0]
    if not pairs:
        return None
    return sum(w for w, _ in pairs) / sum(w / f for w, f in pairs)


def fmt(x: Optional[float], digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def parse_op_map(spec: Optional[str]) -> List[Tuple[re.Pattern, str]]:
    rules = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise SystemExit(f"mca_report: --op-map item {item!r} is not REGEX=op")
        rx, op = item.rsplit("=", 1)
        rules.append((re.compile(rx), op.strip()))
    return rules


DOT_MNEMONICS = ("sdot", "udot", "smmla", "ummla", "usmmla")


def superseded_int_gemm(loops: Sequence["Loop"], core: "Core") -> set:
    """Integer GEMM loops the runtime does not run on `core`: where a set also has tiles
    with the dot product (or matrix multiply) and the core has it, the dispatch takes
    those, so the set's other integer GEMM tiles (SMLAL) run only on cores without it."""
    def int_mnems(lp):
        return {k[2] for k in lp.macs_by_width if isinstance(k, tuple)}
    dot = [lp for lp in loops if lp.op == "gemm" and int_mnems(lp) & set(DOT_MNEMONICS) and
           not int_mnems(lp) & set(core.lacks)]
    if not dot:
        return set()
    return {lp.name for lp in loops if lp.op == "gemm" and int_mnems(lp) and
            not int_mnems(lp) & set(DOT_MNEMONICS)}


def classify(fn: str, fsel: re.Pattern, rules) -> str:
    b = base_name(fn)
    for rx, op in rules:
        if rx.search(b):
            return op
    m = fsel.search(b)
    if m and m.groups() and m.group(1):
        return m.group(1)
    return "other"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", nargs=3, action="append", default=[],
                    metavar=("NAME", "ISA", "ASM"),
                    help=f"a kernel set: its name, instruction set ({', '.join(ISAS)}) and "
                         "the compiler's assembly of its sources (several joined by "
                         f"{os.pathsep!r}); repeatable")
    ap.add_argument("--functions", default=DEFAULT_FUNCTIONS,
                    help="regex selecting the microkernel functions (matched against the name "
                         "without GCC's .constprop/.isra/.part suffixes; default %(default)s, "
                         "whose group names the operation)")
    ap.add_argument("--op-map", default=None,
                    help="comma-separated REGEX=op rules naming each function's operation "
                         f"({', '.join(OPS)}), tried in order before the --functions group")
    ap.add_argument("--borrow", nargs=3, action="append", default=[],
                    metavar=("SET", "OP", "FROM"),
                    help="SET's operation OP runs FROM's GEMM tiles (on weights it widens "
                         "first: float16 weights, float32 tiles), so FROM's gemm loops count "
                         "as SET's OP; repeatable")
    ap.add_argument("--cores", default=None,
                    help="comma-separated -mcpu names to keep (default: every core of the "
                         "kernel set's table that the llvm-mca knows)")
    ap.add_argument("--llvm-mca", default=os.environ.get("LLVM_MCA"),
                    help="llvm-mca to use (default: $LLVM_MCA, else the newest installed)")
    ap.add_argument("--iterations", type=int, default=0,
                    help=f"llvm-mca -iterations (default {DEFAULT_ITERATIONS}, "
                         f"{LONG_ITERATIONS} for bodies over {LONG_BODY} instructions)")
    ap.add_argument("--loops", choices=("mac", "main", "none"), default="mac",
                    help="per-loop table: every loop with multiply-accumulates (default), only "
                         "the loop with the most of them in each function, or none (summary "
                         "only); totals always use every loop with multiply-accumulates")
    ap.add_argument("--wide", action="store_true",
                    help="per-loop tables with one row per loop and one column per core")
    ap.add_argument("--list", action="store_true",
                    help="list the functions and loops found, without running llvm-mca")
    ap.add_argument("--check", action="store_true",
                    help="exit 0 if an llvm-mca is found (and print it), 1 otherwise")
    ap.add_argument("-o", "--output", help="also write the markdown report here")
    args = ap.parse_args(argv)

    if args.check:
        found = find_llvm_mca(args.llvm_mca)
        if found:
            print(f"{found[0]} (LLVM {found[1]})")
            return 0
        return 1
    if not args.kernels:
        ap.error("no --kernels given")

    fsel = re.compile(args.functions)
    rules = parse_op_map(args.op_map)
    keep = set(args.cores.split(",")) if args.cores else None

    sets = []  # (name, isa, loops, functions, notes)
    for name, isa_name, path in args.kernels:
        if isa_name not in ISAS:
            ap.error(f"unknown instruction set {isa_name!r} (one of {', '.join(ISAS)})")
        paths = [p for p in path.split(os.pathsep) if p]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing or not paths:
            print(f"mca_report: {name}: {', '.join(missing) or 'no file'} not found, skipped",
                  file=sys.stderr)
            continue
        funcs = {}
        for p in paths:
            funcs.update(parse_functions(p, isa_name))
        isa = ISAS[isa_name]
        if isa_name == "armv7" and thumb_code(paths[0]):
            isa = replace(isa, triple="thumbv7a-linux-gnueabihf")
        chosen = [f for f in funcs if fsel.search(base_name(f))]
        notes = []
        if not chosen:
            notes.append(f"no function matches {args.functions!r} (inlined or renamed?)")
        loops: List[Loop] = []
        for f in chosen:
            for lp in find_loops(f, funcs[f], isa_name):
                lp.op = classify(f, fsel, rules)
                loops.append(lp)
        for f in chosen:
            if not any(lp.function == f and lp.mac_ops for lp in loops):
                notes.append(f"{f}: no inner loop with multiply-accumulates")
        # A set with float16 arithmetic is dispatched only where the CPU reports it
        # (asimdhp), so a core without it never runs any of the set's functions.
        if any(FP16_ARITH.match(f"{ln.mnem} {ln.ops}") for f in chosen for ln in funcs[f]):
            isa = replace(isa, requires="fp16")
        sets.append((name, isa, loops, chosen, notes))
        for n in notes:
            print(f"mca_report: {name}: {n}", file=sys.stderr)

    by_name = {st[0]: st for st in sets}
    for name, op, source in args.borrow:
        if name not in by_name or source not in by_name:
            print(f"mca_report: --borrow {name} {op} {source}: no such kernel set, ignored",
                  file=sys.stderr)
            continue
        if op not in OPS:
            ap.error(f"--borrow {name} {op} {source}: unknown operation {op!r} "
                     f"(one of {', '.join(OPS)})")
        _, isa, loops, chosen, _ = by_name[name]
        _, src_isa, src_loops, src_chosen, _ = by_name[source]
        if src_isa.name != isa.name:
            ap.error(f"--borrow {name} {op} {source}: different instruction sets")
        loops.extend(replace(lp, op=op) for lp in src_loops if lp.op == "gemm")
        chosen.extend(f for f in src_chosen if f not in chosen and
                      any(lp.function == f and lp.op == "gemm" for lp in src_loops))

    if args.list:
        for name, isa, loops, chosen, _ in sets:
            print(f"{name} ({isa.name}, {isa.triple}): {len(chosen)} functions")
            for lp in loops:
                print(f"  {lp.name:28} {lp.op:7} {lp.label:8} insts={len(lp.body):4} "
                      f"mac_ops={lp.mac_ops:3} macs={lp.lane_macs:4} branches={lp.forward_branches}")
        return 0

    found = find_llvm_mca(args.llvm_mca)
    if not found:
        print("mca_report: llvm-mca not found. Install it with `apt-get install llvm-19` "
              "(or `apt-get install llvm` for LLVM 14), or point LLVM_MCA at one.",
              file=sys.stderr)
        return 2
    exe, version = found
    print(f"mca_report: using {exe} (LLVM {version})", file=sys.stderr)

    summary_rows, loop_rows, calib_rows, skipped = [], [], [], []
    # set -> (cores, loop -> (leading cells, core -> cell))
    wide: Dict[str, Tuple[List[str], Dict[str, Tuple[List[str], Dict[str, str]]]]] = {}
    for name, isa, loops, chosen, notes in sets:
        known = set(mca_cpus(exe, isa))
        mac_loops = [lp for lp in loops if lp.mac_ops]
        for core in CORES[isa.name]:
            mac_loops = [lp for lp in loops if lp.mac_ops and not any(
                isinstance(k, tuple) and k[2] in core.lacks for k in lp.macs_by_width)]
            if keep is not None and core.cpu not in keep:
                continue
            if isa.requires and isa.requires in core.lacks:
                skipped.append(f"{name} on {core.cpu}: not run there (the core has no "
                               f"{isa.requires} arithmetic, which the set needs)")
                continue
            if core.cpu not in known:
                skipped.append(f"{name} on {core.cpu}: this llvm-mca ({version}) has no such "
                               f"CPU for {isa.triple}")
                continue
            # What LLVM's model itself allows for independent multiply-accumulates.
            cal = run_mca(exe, isa, core.cpu, list(isa.calib.items()), CALIB_ITERATIONS,
                          resources=True)
            errors = [r["error"] for r in cal.values() if "error" in r]
            if len(errors) == len(isa.calib):
                why = errors[0]
                if "scheduling information" in why:
                    why = "LLVM has no scheduling model for this CPU on this target"
                skipped.append(f"{name} on {core.cpu}: not modelled ({why})")
                continue
            model = "?"
            cal_cells, ceil_cells, set_ceil = [], [], []
            used = {k for lp in mac_loops for k in lp.macs_by_width}
            for form, body in isa.calib.items():
                r = cal.get(form, {})
                key = calib_key(isa.name, body[0])
                if "cycles" in r:
                    model = model_name(r["resources"]) if model == "?" else model
                    peak = len(body) / r["cycles"]
                    cal_cells.append(f"{form}: {peak:.2f}/cycle")
                    ceil_cells.append(f"{form}: {peak / pipes_for(core, key):.2f}")
                    if key in used:
                        set_ceil.append(f"{peak / pipes_for(core, key):.2f}")
                else:
                    cal_cells.append(f"{form}: {r.get('error', 'failed')}")
                    ceil_cells.append(f"{form}: -")
            superseded = superseded_int_gemm(mac_loops, core)
            regions = [(f"L{i}", lp.body) for i, lp in enumerate(mac_loops)]
            res: Dict[str, dict] = {}
            for long_body in (False, True):
                batch = [r for r in regions if (len(r[1]) > LONG_BODY) == long_body]
                if batch:
                    its = args.iterations or (LONG_ITERATIONS if long_body else DEFAULT_ITERATIONS)
                    res.update(run_mca(exe, isa, core.cpu, batch, its))
            per_op: Dict[str, List[Tuple[float, float]]] = {}
            all_pairs = []
            main_loop = {}
            for lp in mac_loops:
                if lp.lane_macs > main_loop.get(lp.function, (0, None))[0]:
                    main_loop[lp.function] = (lp.lane_macs, lp)
            for (rname, _), lp in zip(regions, mac_loops):
                r = res.get(rname, {})
                bound = sum(n / pipes_for(core, w) for w, n in lp.macs_by_width.items())
                cyc = r.get("cycles")
                frac = bound / cyc if cyc and lp.mac_ops else None
                mark = " †" if lp.forward_branches else ""
                runs = lp.name not in superseded
                other = "" if runs else " ‡"
                if args.loops == "mac" or (args.loops == "main" and main_loop[lp.function][1] is lp):
                    loop_rows.append([name, f"{core.cpu} ({model})", f"`{lp.name}`{mark}", lp.op,
                                      str(len(lp.body)), str(lp.mac_ops), str(lp.lane_macs),
                                      fmt(cyc) if cyc else r.get("error", "failed"),
                                      fmt(bound), fmt(frac) + other])
                    cores_w, rows_w = wide.setdefault(name, ([], {}))
                    if f"{core.cpu} ({model})" not in cores_w:
                        cores_w.append(f"{core.cpu} ({model})")
                    row = rows_w.setdefault(lp.name, ([f"`{lp.name}`{mark}", lp.op,
                                                       str(len(lp.body)), str(lp.mac_ops),
                                                       str(lp.lane_macs)], {}))
                    row[1][f"{core.cpu} ({model})"] = (f"{fmt(cyc)} ({fmt(frac)}){other}"
                                                       if cyc else "-")
                if frac and runs:
                    all_pairs.append((lp.lane_macs, frac))
                    per_op.setdefault(lp.op, []).append((lp.lane_macs, frac))
            op_frac = {op: harmonic(p) for op, p in per_op.items()}
            present = {op: s for op, s in MAC_SHARE_LARGE_224.items() if op_frac.get(op)}
            net = harmonic([(s, op_frac[op]) for op, s in present.items()])
            missing = [op for op in OPS if op not in present]
            ceiling = " / ".join(dict.fromkeys(set_ceil)) or "-"
            summary_rows.append([name, core.cpu, model, core.note, ceiling,
                                 str(sum(lp.name not in superseded for lp in mac_loops)),
                                 fmt(harmonic(all_pairs)),
                                 fmt(net) + (f" (no {', '.join(missing)})" if missing and net else "")]
                                + [fmt(op_frac.get(op)) for op in OPS])
            calib_rows.append([name, core.cpu, model, core.note, "; ".join(cal_cells),
                               "; ".join(ceil_cells)])

    def table(head, rows):
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)

    its = (f"{args.iterations} iterations per loop" if args.iterations else
           f"{DEFAULT_ITERATIONS} iterations per loop ({LONG_ITERATIONS} over {LONG_BODY} "
           "instructions)")
    md = [f"Static estimate by llvm-mca (LLVM {version}, {exe}), {its}; functions matching "
          f"`{args.functions}`.", ""]
    md.append("Fraction of the multiply-accumulate bound (bound cycles / modelled cycles). "
              "'all loops': every inner loop with multiply-accumulates of the microkernels "
              "the runtime runs on that core, one iteration of each "
              "(sum of bounds / sum of cycles, i.e. weighted by MACs per iteration); per "
              "operation likewise; 'MobileNetV3-Large': the operations weighted by their share "
              "of its multiply-accumulates at 224x224 (gemm 87.2 %, dwconv 8.5 %, conv 2.5 %, "
              "gemv 1.9 %). 'model ceiling': the highest fraction LLVM's model allows "
              "independent multiply-accumulates (model check below).")
    md.append("")
    md.append(table(["kernels", "core", "LLVM model", "MAC pipes", "model ceiling", "loops",
                     "all loops",
                     "MobileNetV3-Large"] + list(OPS), summary_rows))
    md.append("")
    if args.loops != "none":
        md.append("Per loop (`function#n`: its n-th inner loop in address order): instructions, "
                  "multiply-accumulate instructions and lane MACs per iteration, "
                  + ("then per core llvm-mca cycles per iteration (fraction = bound / cycles). "
                     if args.wide else
                     "llvm-mca cycles per iteration, the MAC-pipe bound in cycles, and "
                     "fraction = bound / cycles. ")
                  + "† the body has forward branches, modelled as if every path ran. "
                  "‡ the runtime does not run this function on this core (it runs the "
                  "set's dot-product tiles instead); "
                  "left out of the totals. n/a: the core lacks one of the loop's "
                  "instructions, so the runtime never runs it there.")
        md.append("")
        if args.wide:
            for name, (cores_w, rows_w) in wide.items():
                # A core whose instruction set lacks one of the loop's instructions (SDOT
                # on the A53) gets no cell of its own: "n/a" keeps the columns aligned.
                md.append(table([f"{name} loop", "op", "insts", "MAC insts", "MACs"] + cores_w,
                                [head + [cells.get(c, "n/a") for c in cores_w]
                                 for head, cells in rows_w.values()]))
                md.append("")
        else:
            md.append(table(["kernels", "core (model)", "loop", "op", "insts", "MAC insts",
                             "MACs", "cycles/iter", "bound", "fraction"], loop_rows))
            md.append("")
    md.append("Model check: multiply-accumulate instructions per cycle that LLVM's model allows "
              "for independent instructions, against the pipes used for the bound. Where the "
              "model allows fewer than the core has, no loop can reach 1.0 on it; where it "
              "allows more, a loop can exceed 1.0.")
    md.append("")
    md.append(table(["kernels", "core", "LLVM model", "MAC pipes (bound)", "LLVM model peak",
                     "highest fraction the model allows"], calib_rows))
    notes = [f"{name}: {n}" for name, _, _, _, ns in sets for n in ns] + skipped
    if notes:
        md.append("")
        md += [f"- {n}" for n in notes]
    text = "\n".join(md) + "\n"
    sys.stdout.write(text)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
