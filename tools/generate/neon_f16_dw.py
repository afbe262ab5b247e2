#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_f16_dw_loops.h: the hot loops of the float16-arithmetic
(relaxed precision, FMLA .8h) AArch64 depthwise microkernels, arm/neon_f16_body.h.

- 3x3 and 5x5, strides 1 and 2: the float32 loops of tools/generate/neon_f32_dw.py (groups of 8
  outputs, each input row's window loaded as one group ahead of its FMLAs, 8 accumulators,
  taps kx-major), with eight float16 lanes per vector in place of four float32 ones. The
  registers, the offsets and the schedule are the same (a vector is 16 bytes either way),
  so the two sets keep one schedule: this header includes the float32 one and defines its
  loops with that header's macros, on float16 elements and the .8h arrangement (and the
  3x3 stride-1 rows of groups of 8, which only this set runs).
- Any other kernel size or stride (f16_dw_loop_any): the same 8 accumulators, taps in
  order ky, then kx, one weight load and 8 input loads per tap. The tap loop is the inner
  loop; its loads use register offsets (one micro-op each, no post-indexing), so an
  in-order core issues each load in one slot.

    python3 tools/generate/neon_f16_dw.py > csrc/kernels/generated/neon_f16_dw_loops.h
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import neon_f32_dw  # noqa: E402
from neon_f32_gemm import Seq, asm_block, expand, header_macros, macros_used  # noqa: E402

# Groups of 8 outputs for every shape (arm/neon_f16_body.h's driver), whatever the float32
# loops use.
G = 8


def loop_args(ks: int, s: int):
    return ks, s, G, "8h", f"Lhpdw{ks}x{ks}s{s}_loop"


def shape(ks: int, s: int) -> str:
    return neon_f32_dw.instance(f"f16_dw_loop_{ks}x{ks}s{s}", ks, s, G, "float16_t",
                                "float16x8_t", "8h", f"Lhpdw{ks}x{ks}s{s}_loop")


def any_shape() -> str:
    """v0-v7 accumulators, v8 the tap's weights, v16-v23 the tap's 8 inputs. The operands
    the loop advances are early-clobbered: an input of equal value (the row count is the
    tap count) must not share their register."""
    loads = ["ldr q8, [%[w]]", "ldr q16, [%[p]]", "ldr q17, [%[p], %[o1]]",
             "ldr q18, [%[p], %[o2]]", "ldr q19, [%[p], %[o3]]", "ldr q20, [%[p4]]",
             "ldr q21, [%[p4], %[o1]]", "ldr q22, [%[p4], %[o2]]", "ldr q23, [%[p4], %[o3]]"]
    fmlas = [f"fmla v{j}.8h, v{16 + j}.8h, v8.8h" for j in range(G)]
    # pointer steps between the loads and the FMLAs they feed
    steps = ["add %[w], %[w], %[wstep]", "add %[p], %[p], %[ps]", "add %[p4], %[p4], %[ps]",
             "subs %[k], %[k], #1"]
    body = loads[:5] + steps[:1] + loads[5:] + steps[1:3] + fmlas[:4] + steps[3:] + fmlas[4:]
    asm = ([f"ldr q{j}, [%[bias]]" for j in range(G)] +
           [".Lhpdw_any_row%=:",
            "ldr %[p], [%[q]], #8",
            "mov %[k], %[ks]",
            "add %[p4], %[p], %[b4]",
            ".Lhpdw_any_tap%=:"] + body +
           ["b.ne .Lhpdw_any_tap%=",
            "subs %[rows], %[rows], #1",
            "b.ne .Lhpdw_any_row%=",
            "str q0, [%[out]]", "str q1, [%[out], %[s1]]", "str q2, [%[out], %[s2]]",
            "str q3, [%[out], %[s3]]", "add %[p4], %[out], %[s4]",
            "str q4, [%[p4]]", "str q5, [%[p4], %[s1]]", "str q6, [%[p4], %[s2]]",
            "str q7, [%[p4], %[s3]]"])
    # the same instructions, the bias loads and FMLAs through the float32 loops' macros
    fmla = [neon_f32_dw.FMLA(j, 16 + j, 8, "8h") for j in range(G)]
    code = ([Seq(neon_f32_dw.BIAS(j) for j in range(G))] + asm[G:G + 5] + body[:12] +
            [Seq(fmla[:4]), steps[3], Seq(fmla[4:])] + asm[G + 5 + len(body):])
    if expand(code) != asm:
        raise SystemExit("neon_f16_dw: the macros of f16_dw_loop_any are not its schedule")
    text = asm_block(code, neon_f32_dw.SEP)
    clobbers = ", ".join(f'"v{v}"' for v in list(range(9)) + list(range(16, 24)))
    return f"""
/* Any kernel size and stride: ks x ks taps of 8 outputs. q[ky] is input row ky at the
 * first output's first tap, the 8 outputs' inputs `os` bytes apart along it, taps `ps`
 * bytes apart; w the ks * ks weight vectors, `wstep` bytes apart (ky-major); the outputs
 * go to out, `s1` bytes apart. */
static inline __attribute__((always_inline)) void f16_dw_loop_any(
    const float16_t *const *q, uint64_t ks, uint64_t os, uint64_t ps, const float16_t *w,
    uint64_t wstep, const float16x8_t *bias, float16_t *out, uint64_t s1) {{
    const uint64_t o2 = 2 * os, o3 = 3 * os, b4 = 4 * os, s2 = 2 * s1, s3 = 3 * s1,
                   s4 = 4 * s1;
    uint64_t rows = ks, k;
    const float16_t *p, *p4;
    __asm__ volatile(
{text}
        : [q] "+&r"(q), [w] "+&r"(w), [rows] "+&r"(rows), [k] "=&r"(k), [p] "=&r"(p),
          [p4] "=&r"(p4)
        : [ks] "r"(ks), [o1] "r"(os), [o2] "r"(o2), [o3] "r"(o3), [b4] "r"(b4),
          [ps] "r"(ps), [wstep] "r"(wstep), [bias] "r"(bias), [out] "r"(out), [s1] "r"(s1),
          [s2] "r"(s2), [s3] "r"(s3), [s4] "r"(s4)
        : {clobbers}, "cc", "memory");
}}
"""


def main() -> int:
    out = ["/* Generated by tools/generate/neon_f16_dw.py: do not edit. The hot loops of the AArch64",
           " * float16-arithmetic depthwise microkernels (arm/neon_f16_body.h); see the generator.",
           " * f16_dw_loop_<K>x<K>s<S>(q, out, c2, n, w, bias) runs n >= 1 groups of 8 outputs of",
           " * one channel vector: q[ky] is input row ky at the group's first window column,",
           " * pixels c2 bytes apart, as are the outputs from out; w holds the K*K float16 weight",
           " * vectors (ky-major), bias 8 copies of the bias vector. Writes the raw sums. */",
           "#ifndef MNV3_NEON_F16_DW_LOOPS_H", "#define MNV3_NEON_F16_DW_LOOPS_H", "",
           "/* The float32 loops' macros (DWL_). */", '#include "neon_f32_dw_loops.h"', "",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif", ""]
    codes = [neon_f32_dw.asm_code(*loop_args(ks, s)) for ks, s in neon_f32_dw.SHAPES]
    out.append(header_macros(codes, neon_f32_dw.SEP,
                             known=macros_used(neon_f32_dw.f32_codes())))
    for ks, s in neon_f32_dw.SHAPES:
        out += ["", shape(ks, s)]
    out.append(any_shape())
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
