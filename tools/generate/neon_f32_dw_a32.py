#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_f32_dw_a32_loops.h: the hot loops of the ARMv7 (32-bit NEON,
VFPv4) depthwise microkernels as inline assembly. Groups of 8 outputs of one channel
vector: 8 accumulators (q0-q7), 8 independent VFMA chains, in the 16 Q registers ARMv7 has.

The 3x3 and 5x5 loops (every input inside the window, n groups one after the other) are
straight-line per group, and go input-major through each input row: a row's weights stay
in registers (q8.. , one row at a time) and every input vector of the row's window is
loaded once and multiplied into every output whose window holds it. Kx-major order (as the
AArch64 loops) would need the whole window in registers beside the weights: 10 to 19
vectors where 16 - 8 accumulators leave 8, so each tap would reload its inputs, a load per
multiply-add. Input-major order keeps an output's taps in the order ky, then kx, so the
results are those of the generic body (and of these loops run on a zero-padded window, the
border path) bit for bit.

Costs on the LLVM model of these cores (Cortex-A57, which also serves the A72): a VLD1 of
one or two Q registers from an address register is one micro-op, a post-indexed one two;
three micro-ops dispatch per cycle. So:

- The accumulators start from the bias by four 32-byte loads of a block that holds the
  bias twice (copies by VMOV would take the multiply-add pipes), then the row's weights, two
  per load, from the same block (float32, converted once per channel vector by the caller).
- Inputs walk each row with post-indexed loads by the pixel stride; the row's last load
  steps back by (S - K + 1) pixels instead, leaving the pointer at the next group's window.
- Outputs go by post-indexed stores, which leave the output pointer at the next group.

The generic loop (any other kernel side, stride 1 or 2) runs one group over K x K taps in
two nested loops; the inner one is a tap: one weight load, 8 input loads (post-indexed by
the output stride, the last one back to the next column), 8 multiply-adds.

    python3 tools/generate/neon_f32_dw_a32.py > csrc/kernels/generated/neon_f32_dw_a32_loops.h
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neon_f32_gemm import Macro, asm_block, c_comment, expand, header_macros  # noqa: E402

G = 8
SHAPES = ((3, 1), (3, 2), (5, 1), (5, 2))
W_FIRST = 8  # the row's weights in q8.., its inputs in the registers after them


def qd(q: int) -> str:
    """A Q register as the D-register list VLD1/VST1 take."""
    return f"{{d{2 * q}-d{2 * q + 1}}}"


def start_lines() -> list:
    """The accumulators start from the bias: four 32-byte loads of a block that holds it
    twice, the last stepping past the block."""
    body = [f"vld1.32 {{d{4 * i}-d{4 * i + 3}}}, [%[blk]]" for i in range(3)]
    return body + ["vld1.32 {d12-d15}, [%[blk]]!"]


def store_lines() -> list:
    """The 8 sums to out, post-indexed by the output stride (out ends at the next group)."""
    return [f"vst1.32 {qd(j)}, [%[out]], %[c4]" for j in range(G)]


def weight_lines(ks: int) -> list:
    """A row's weights, two per load, into q8.."""
    out, kx = [], 0
    while kx < ks:
        if kx + 1 < ks:
            out.append(f"vld1.32 {{d{2 * (W_FIRST + kx)}-d{2 * (W_FIRST + kx) + 3}}}, [%[blk]]!")
            kx += 2
        else:
            out.append(f"vld1.32 {qd(W_FIRST + kx)}, [%[blk]]!")
            kx += 1
    return out


def row_parts(ks: int, s: int, row: str):
    """A row: its weights and the loads ahead of the first input (the part every shape of
    kernel side ks shares), then input-major: each input's load ahead and multiply-adds."""
    T = (G - 1) * s + ks
    inputs = list(range(W_FIRST + ks, 16))  # rotating input registers
    R = len(inputs)

    def load(t):
        step = "%[back]" if t == T - 1 else "%[c4]"
        return f"vld1.32 {qd(inputs[t % R])}, [%[{row}]], {step}"

    ahead = R - 1
    head = weight_lines(ks) + [load(t) for t in range(min(ahead, T))]
    body = []
    for t in range(T):
        if t + ahead < T:
            body.append(load(t + ahead))
        for j in range(G):
            k = t - j * s
            if 0 <= k < ks:
                body.append(f"vfma.f32 q{j}, q{inputs[t % R]}, q{W_FIRST + k}")
    return head, body


def shape_lines(ks: int, s: int) -> list:
    """The instructions of the loop of one shape (every input inside the window, n groups
    one after the other)."""
    body = start_lines()
    for ky in range(ks):
        head, rest = row_parts(ks, s, f"r{ky}")
        body += head + rest
    body.append(f"sub %[blk], %[blk], #{32 + 16 * ks * ks}")
    body += store_lines() + ["subs %[n], %[n], #1"]
    lab = f".Ldwa{ks}x{ks}s{s}_loop%="
    return [lab + ":"] + body + [f"bne {lab}"]


# ---- The header's macros (neon_f32_gemm.Macro) ------------------------------------------
SEP = "\\n\\t"

START = Macro("DWA_START", None, start_lines,
              "DWA_START: the 8 accumulators start from the bias (four 32-byte loads of the "
              "block that holds it twice; blk steps past it).")
STORE = Macro("DWA_STORE", None, store_lines,
              "DWA_STORE: the group's 8 sums to out, post-indexed by the output stride c4.")
HEAD = {ks: Macro(f"DWA_HEAD_{ks}", ["R"], (lambda ks: lambda r: row_parts(ks, 1, r)[0])(ks),
                  f"DWA_HEAD_{ks}(R): a row's start in the {ks}x{ks} loops, either stride: its "
                  f"{ks} weights (two per load, from blk) into q8.., the inputs before the first "
                  "multiply-add loaded from input row %[R]." if ks == 3 else None)
        for ks in (3, 5)}
assert all(row_parts(ks, 1, "r")[0] == row_parts(ks, 2, "r")[0] for ks in (3, 5))
ROW = {(ks, s): Macro(f"DWA_ROW_{ks}X{ks}S{s}", ["R"],
                      (lambda ks, s: lambda r: [HEAD[ks](r)] + row_parts(ks, s, r)[1])(ks, s),
                      f"DWA_ROW_<K>X<K>S<S>(R): one input row %[R] of a shape: DWA_HEAD_<K>, "
                      "then input-major: each input's load ahead (the row's last steps back to "
                      "the next group's window) and the multiply-adds of the outputs whose "
                      "window holds it." if (ks, s) == SHAPES[0] else None)
       for ks, s in SHAPES}


def function_macro(ks: int) -> str:
    """DWA_LOOP_K<ks>: a loop of ks input rows as a function, for either stride."""
    clobbers = (", ".join(f'"d{d}"' for d in range(16)) + ",\n          " +
                ", ".join(f'"d{d}"' for d in range(16, 32)))
    rows_out = ", ".join(f'[r{ky}] "+&r"(r{ky})' for ky in range(ks))
    lines = ([
        "static inline __attribute__((always_inline)) void NAME(",
        "    const float *const *q, float *out, uint32_t c4, uint32_t n, const float *blk) {",
        f"    const float {', '.join(f'*r{ky} = q[{ky}]' for ky in range(ks))};",
        "    const uint32_t back = 0u - BACK * c4;",
        "    __asm__ volatile(",
        '        "." #L "%=:\\n\\t"',
        "        DWA_START"] +
        [f"        ROW(r{ky})" for ky in range(ks)] +
        [f'        "sub %[blk], %[blk], #{32 + 16 * ks * ks}\\n\\t"',
         "        DWA_STORE",
         '        "subs %[n], %[n], #1\\n\\t"',
         '        "bne ." #L "%=\\n\\t"',
         f'        : {rows_out}, [out] "+&r"(out), [n] "+&r"(n), [blk] "+&r"(blk)',
         '        : [c4] "r"(c4), [back] "r"(back)',
         f'        : {clobbers},',
         '          "cc", "memory");',
         "}"])
    doc = c_comment(f"DWA_LOOP_K{ks}(NAME, BACK, ROW, L): defines NAME(q, out, c4, n, blk), "
                    f"the loop (label L) of a {ks}x{ks} shape, ROW its DWA_ROW_ macro: n >= 1 "
                    "groups, each from the bias block, the rows' weights and inputs, then its "
                    "stores; BACK is what the row's last load steps back by, in pixels "
                    "(K - S - 1).")
    return "\n".join(doc + [f"#define DWA_LOOP_K{ks}(NAME, BACK, ROW, L) \\"] +
                     [ln + " \\" for ln in "\n".join(lines[:-1]).split("\n")] + [lines[-1]])


def shape(ks: int, s: int) -> str:
    """One loop, checked: the function macro's template with this shape's row macro."""
    lab = f"Ldwa{ks}x{ks}s{s}_loop"
    code = [f".{lab}%=:", START] + [ROW[(ks, s)](f"r{ky}") for ky in range(ks)] + [
        f"sub %[blk], %[blk], #{32 + 16 * ks * ks}", STORE, "subs %[n], %[n], #1",
        f"bne .{lab}%="]
    if expand(code) != shape_lines(ks, s):
        raise SystemExit(f"neon_f32_dw_a32: the macros of the {ks}x{ks} stride-{s} loop are not "
                         "its schedule")
    T = (G - 1) * s + ks
    head = c_comment(f"{ks}x{ks}, stride {s}: {T} inputs a row, {16 - W_FIRST - ks} registers "
                     "for them.")
    return "\n".join(head + [f"DWA_LOOP_K{ks}(dwa_loop_{ks}x{ks}s{s}, {ks - s - 1}u, "
                             f"DWA_ROW_{ks}X{ks}S{s}, {lab})"])


def generic() -> str:
    x = list(range(9, 16))  # inputs; the 8th reuses the first's register

    def xr(j):
        return x[j % len(x)]

    body = start_lines()
    body += [".Ldwa_row%=:", "ldr %[p], [%[q]], #4", "mov %[kx], %[k]", ".Ldwa_tap%=:",
             "vld1.32 {d16-d17}, [%[blk]]!"]
    # each load followed by a multiply-add: a post-indexed load is two micro-ops, and three
    # dispatch per cycle
    def load(j):
        return f"vld1.32 {qd(xr(j))}, [%[p]], %[{'back' if j == G - 1 else 'sc4'}]"

    body.append(load(0))
    for j in range(G):
        if j + 1 < G:
            body.append(load(j + 1))
        body.append(f"vfma.f32 q{j}, q{xr(j)}, q8")
    body += ["subs %[kx], %[kx], #1", "bne .Ldwa_tap%=", "subs %[ky], %[ky], #1",
             "bne .Ldwa_row%="]
    body += store_lines()
    code = [START] + body[4:-G] + [STORE]
    if expand(code) != body:
        raise SystemExit("neon_f32_dw_a32: the macros of the generic loop are not its schedule")
    text = asm_block(code, SEP)
    clobbers = ", ".join(f'"d{d}"' for d in range(32))
    return f"""
/* Any kernel side k (and stride): one group, rows q[0..k), taps ky-major. */
static inline __attribute__((always_inline)) void dwa_loop_any(
    const float *const *q, float *out, uint32_t c4, uint32_t k, uint32_t s, const float *blk) {{
    const uint32_t sc4 = s * c4, back = c4 - {G - 1}u * sc4;
    const float *p;
    uint32_t kx, ky = k;
    __asm__ volatile(
{text}
        : [q] "+&r"(q), [out] "+&r"(out), [blk] "+&r"(blk), [p] "=&r"(p), [kx] "=&r"(kx),
          [ky] "+&r"(ky)
        : [k] "r"(k), [c4] "r"(c4), [sc4] "r"(sc4), [back] "r"(back)
        : {clobbers}, "cc", "memory");
}}
"""


def main() -> int:
    out = ["/* Generated by tools/generate/neon_f32_dw_a32.py: do not edit. The hot loops of the ARMv7",
           " * depthwise microkernels; see the generator for the schedule.",
           " * dwa_loop_<K>x<K>s<S>(q, out, c4, n, blk) runs n >= 1 groups of 8 outputs of one",
           " * channel vector: q[ky] is input row ky at the group's first window column, pixels c4",
           " * bytes apart, as are the outputs from out; blk holds the bias vector twice, then the",
           " * K*K float32 weight vectors (ky-major). Writes the raw sums (bias and taps). */",
           "#ifndef MNV3_NEON_F32_DW_A32_LOOPS_H", "#define MNV3_NEON_F32_DW_A32_LOOPS_H", "",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif", "",
           header_macros([START, STORE] + [ROW[sh]("r0") for sh in SHAPES], SEP)]
    for ks in (3, 5):
        out += ["", function_macro(ks)]
    for ks, s in SHAPES:
        out += ["", shape(ks, s)]
    out.append(generic())
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
