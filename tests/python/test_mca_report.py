"""Tests of tools/mca_report.py: loop finding and multiply-accumulate counting on small
assembly listings in GCC's style for each instruction set, the weighting, the MobileNetV3
MAC shares, and (when an llvm-mca is installed) one end-to-end run."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "python"))

import mca_report as mr  # noqa: E402

X86 = """\
\t.text
\t.p2align 4
\t.type\tkern, @function
kern:
.LFB1:
\t.cfi_startproc
\ttestl\t%edi, %edi
\tje\t.L9
.L2:
\tvmovups\t(%rcx), %ymm1
\tmovl\t%edx, %eax
.L3:
\tvbroadcastss\t(%rax), %ymm2
\tvfmadd231ps\t%ymm1, %ymm2, %ymm3
\tvfmadd231ps\t(%rsi), %ymm2, %ymm4    # a comment
\tcmpq\t%rsi, %r8
\tje\t.L4
\tprefetcht0\t(%rsi)
.L4:
\taddq\t$4, %rax
\tcmpq\t%rax, %r9
\tjne\t.L3
\taddq\t$64, %rcx
\tcmpq\t%rcx, %r10
\tjne\t.L2
.L9:
\tret
\t.cfi_endproc
\t.size\tkern, .-kern
\t.type\tkern.constprop.0, @function
kern.constprop.0:
.L20:
\tvfmadd132ps\t%zmm0, %zmm1, %zmm2
\tvfmadd231ss\t%xmm0, %xmm1, %xmm2
\tdecl\t%eax
\tjne\t.L20
\tret
\t.size\tkern.constprop.0, .-kern.constprop.0
"""

A64 = """\
\t.type\tpw_tile, %function
pw_tile:
.L5:
\tldr\tq0, [x1], 16
\tfmla\tv16.4s, v0.4s, v1.s[0]
\tfmla\tv17.4s, v0.4s, v2.4s
\tfmla\tv18.2s, v0.2s, v2.2s
\tfmadd\ts0, s1, s2, s0 // scalar
\tfmul\tv3.4s, v0.4s, v1.4s
\tsubs\tw2, w2, #1
\tbne\t.L5
.L6:
\tfmla\tv16.4s, v0.4s, v1.4s
\tcbnz\tx3, .L6
\tb\t.L5
\tret
\t.size\tpw_tile, .-pw_tile
"""

A32 = """\
\t.syntax unified
\t.thumb
\t.type\tfc, %function
fc:
.L7:
\tvld1.32\t{d4}, [ip]!
\tvmla.f32\tq9, q13, d4[0]
\tvfma.f32\tq8, q12, q11
\tvmla.f32\ts0, s1, s2   @ scalar
\tvmla.i32\tq1, q2, q3
\tcmp\tr4, r0
\tit\tne
\taddne\tr9, r9, #64
\tbcs.w\t.L7
\tbx\tlr
\t.size\tfc, .-fc
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_x86_innermost_loops_and_macs(tmp_path):
    funcs = mr.parse_functions(write(tmp_path, "k.s", X86), "x86-avx2")
    assert set(funcs) == {"kern", "kern.constprop.0"}
    loops = mr.find_loops("kern", funcs["kern"], "x86-avx2")
    # .L2 encloses .L3's backward branch, so only .L3 is innermost
    assert [lp.label for lp in loops] == [".L3"]
    lp = loops[0]
    assert lp.body[0].startswith("vbroadcastss") and lp.body[-1] == "jne\t.L3"
    assert lp.macs_by_width == {256: 2} and lp.lane_macs == 16
    assert lp.forward_branches == 1
    (z,) = mr.find_loops("kern.constprop.0", funcs["kern.constprop.0"], "x86-avx512")
    assert z.macs_by_width == {512: 1, 0: 1} and z.lane_macs == 17
    assert mr.base_name("kern.constprop.0") == "kern"


def test_aarch64_loops(tmp_path):
    funcs = mr.parse_functions(write(tmp_path, "a.s", A64), "aarch64")
    loops = mr.find_loops("pw_tile", funcs["pw_tile"], "aarch64")
    # the unconditional `b .L5` after .L6 is outside both bodies
    assert [lp.label for lp in loops] == [".L5", ".L6"]
    assert loops[0].macs_by_width == {128: 2, 64: 1, 0: 1}
    assert loops[0].lane_macs == 4 + 4 + 2 + 1
    assert loops[1].mac_ops == 1 and loops[1].body[-1].startswith("cbnz")


def test_armv7_loops(tmp_path):
    path = write(tmp_path, "b.s", A32)
    assert mr.thumb_code(path)
    (lp,) = mr.find_loops("fc", mr.parse_functions(path, "armv7")["fc"], "armv7")
    assert lp.macs_by_width == {128: 2, 0: 1}  # vmla.i32 is integer: not counted
    assert lp.lane_macs == 9 and lp.forward_branches == 0


def test_branch_forms():
    assert mr.branch_info("aarch64", "b.ne", ".L1") == (True, ".L1")
    assert mr.branch_info("aarch64", "tbz", "w0, #3, .L1") == (True, ".L1")
    assert mr.branch_info("aarch64", "bl", "memcpy") is None
    assert mr.branch_info("aarch64", "b", ".L1") == (False, ".L1")
    assert mr.branch_info("armv7", "bne.n", ".L1") == (True, ".L1")
    assert mr.branch_info("armv7", "b.w", ".L1") == (False, ".L1")
    assert mr.branch_info("x86-avx2", "jmp", "*%rax") == (False, None)


def test_classify_and_op_map():
    fsel = __import__("re").compile(mr.DEFAULT_FUNCTIONS)
    assert mr.classify("mnv3_f32_gemm_8x32__avx512", fsel, []) == "gemm"
    assert mr.classify("mnv3_f32_dwconv_3x3s1__neon", fsel, []) == "dwconv"
    assert mr.classify("mnv3_f32_gemv_4x__neon.constprop.0", fsel, []) == "gemv"
    rules = mr.parse_op_map("^pw=gemm,^dw=dwconv")
    legacy = __import__("re").compile(r"^(pw2_r8|dw_k3s1)$")
    assert mr.classify("pw2_r8", legacy, rules) == "gemm"
    assert mr.classify("dw_k3s1.part.0", legacy, rules) == "dwconv"


def test_harmonic_is_ratio_of_sums():
    # two loops of one iteration each: bounds 8 and 2 cycles, modelled 10 and 8 cycles
    assert mr.harmonic([(8, 0.8), (2, 0.25)]) == pytest.approx((8 + 2) / (10 + 8))
    assert mr.harmonic([]) is None


def test_mac_shares_match_the_architecture():
    pytest.importorskip("numpy")
    from mnv3.convert.arch import describe

    net, _ = describe("large", "torchvision")
    macs = dict.fromkeys(mr.OPS, 0)
    s, h = net.stem, 224
    h = (h + 2 - 3) // 2 + 1
    macs["conv"] += h * h * s.out_channels * s.in_channels * 9
    for b in net.blocks:
        if b.expand:
            macs["gemm"] += h * h * b.expand.in_channels * b.expand.out_channels
        d = b.depthwise
        h = (h + 2 * (d.kernel // 2) - d.kernel) // d.stride + 1
        macs["dwconv"] += h * h * d.out_channels * d.kernel ** 2
        if b.se:
            for c in (b.se.reduce, b.se.expand):
                macs["gemv"] += c.in_channels * c.out_channels
        macs["gemm"] += h * h * b.project.in_channels * b.project.out_channels
    macs["gemm"] += h * h * net.last_conv.in_channels * net.last_conv.out_channels
    for c in net.head:
        macs["gemv"] += c.in_channels * c.out_channels
    total = sum(macs.values())
    assert 216e6 < total < 217e6
    for op, share in mr.MAC_SHARE_LARGE_224.items():
        assert macs[op] / total == pytest.approx(share, abs=5e-5)


@pytest.mark.skipif(mr.find_llvm_mca(None) is None, reason="llvm-mca not installed")
def test_end_to_end_haswell(tmp_path, capsys):
    body = "".join(f"\tvfmadd231ps\t%ymm12, %ymm13, %ymm{i}\n" for i in range(12))
    asm = (f"\t.type\tmnv3_f32_gemm_6x16__avx2, @function\nmnv3_f32_gemm_6x16__avx2:\n"
           f".L1:\n{body}\tdecq\t%rax\n\tjne\t.L1\n\tret\n"
           f"\t.size\tmnv3_f32_gemm_6x16__avx2, .-mnv3_f32_gemm_6x16__avx2\n")
    out = tmp_path / "r.md"
    rc = mr.main(["--kernels", "avx2", "x86-avx2", write(tmp_path, "e.s", asm),
                  "--cores", "haswell", "-o", str(out)])
    assert rc == 0
    text = out.read_text()
    row = next(r for r in text.splitlines() if "`mnv3_f32_gemm_6x16__avx2#1`" in r)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5:7] == ["12", "96"]
    assert float(cells[-1]) == pytest.approx(1.0, abs=0.02)


def _a64_kernel(name, body):
    return (f"\t.type\t{name}, %function\n{name}:\n.L1:\n{body}\tsubs\tx2, x2, #1\n"
            f"\tbne\t.L1\n\tret\n\t.size\t{name}, .-{name}\n")


@pytest.mark.skipif(mr.find_llvm_mca(None) is None, reason="llvm-mca not installed")
def test_end_to_end_aarch64_feature_gaps(tmp_path):
    """A float16-arithmetic set is not modelled on cores without FP16 arithmetic, and a
    loop with SDOT leaves an aligned n/a cell on the cores that lack it."""
    fp16 = _a64_kernel("mnv3_f16_gemm_1x8__neon",
                       "".join(f"\tfmla\tv{i}.8h, v20.8h, v21.h[0]\n" for i in range(8)))
    dot = (_a64_kernel("mnv3_q8_gemm_1x16c4__neondot",
                       "".join(f"\tsdot\tv{i}.4s, v20.16b, v21.4b[0]\n" for i in range(8)))
           + _a64_kernel("mnv3_q8_gemm_1x8__neon",
                         "".join(f"\tsmlal\tv{i}.4s, v20.4h, v21.h[0]\n" for i in range(8))))
    out = tmp_path / "r.md"
    rc = mr.main(["--kernels", "fp16", "aarch64", write(tmp_path, "h.s", fp16),
                  "--kernels", "q8", "aarch64", write(tmp_path, "q.s", dot),
                  "--cores", "cortex-a53,neoverse-n1", "--loops", "main", "--wide",
                  "-o", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "fp16 on cortex-a53: not run there" in text
    summary = [r for r in text.splitlines() if r.startswith("| fp16 |")]
    assert {r.split("|")[2].strip() for r in summary} == {"neoverse-n1"}
    row = next(r for r in text.splitlines() if "`mnv3_q8_gemm_1x16c4__neondot#1`" in r)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5] == "n/a" and cells[6] != "n/a"  # a53 column, then neoverse-n1
    row = next(r for r in text.splitlines() if "`mnv3_q8_gemm_1x8__neon#1`" in r)
    assert "n/a" not in row
