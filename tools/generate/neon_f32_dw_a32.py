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
import sys

G = 8


def qd(q: int) -> str:
    """A Q register as the D-register list VLD1/VST1 take."""
    return f"{{d{2 * q}-d{2 * q + 1}}}"


def shape(ks: int, s: int) -> str:
    T = (G - 1) * s + ks
    w_first = 8
    inputs = list(range(w_first + ks, 16))  # rotating input registers
    R = len(inputs)
    body = [f"vld1.32 {{d{4 * i}-d{4 * i + 3}}}, [%[blk]]" for i in range(3)]
    body.append("vld1.32 {d12-d15}, [%[blk]]!")
    for ky in range(ks):
        row = f"%[r{ky}]"
        # the row's weights, two per load
        kx = 0
        while kx < ks:
            if kx + 1 < ks:
                body.append(f"vld1.32 {{d{2 * (w_first + kx)}-d{2 * (w_first + kx) + 3}}}, [%[blk]]!")
                kx += 2
            else:
                body.append(f"vld1.32 {qd(w_first + kx)}, [%[blk]]!")
                kx += 1

        def load(t):
            step = "%[back]" if t == T - 1 else "%[c4]"
            return f"vld1.32 {qd(inputs[t % R])}, [{row}], {step}"

        ahead = R - 1
        for t in range(min(ahead, T)):
            body.append(load(t))
        for t in range(T):
            if t + ahead < T:
                body.append(load(t + ahead))
            for j in range(G):
                k = t - j * s
                if 0 <= k < ks:
                    body.append(f"vfma.f32 q{j}, q{inputs[t % R]}, q{w_first + k}")
    body.append(f"sub %[blk], %[blk], #{32 + 16 * ks * ks}")
    body += [f"vst1.32 {qd(j)}, [%[out]], %[c4]" for j in range(G)]
    body.append("subs %[n], %[n], #1")
    lab = f".Ldwa{ks}x{ks}s{s}_loop%="
    asm = [lab + ":"] + body + [f"bne {lab}"]
    text = "\n".join(f'        "{ins}\\n\\t"' for ins in asm)
    rows = ", ".join(f'[r{ky}] "+&r"(r{ky})' for ky in range(ks))
    rows_in = "\n".join(f"    const float *r{ky} = q[{ky}];" for ky in range(ks))
    clobbers = ", ".join(f'"d{d}"' for d in range(32))
    return f"""
/* {ks}x{ks}, stride {s}: {T} inputs a row, {R} registers for them. */
static inline __attribute__((always_inline)) void dwa_loop_{ks}x{ks}s{s}(
    const float *const *q, float *out, uint32_t c4, uint32_t n, const float *blk) {{
{rows_in}
    const uint32_t back = 0u - {ks - s - 1}u * c4;
    __asm__ volatile(
{text}
        : {rows}, [out] "+&r"(out), [n] "+&r"(n), [blk] "+&r"(blk)
        : [c4] "r"(c4), [back] "r"(back)
        : {clobbers}, "cc", "memory");
}}
"""


def generic() -> str:
    x = list(range(9, 16))  # inputs; the 8th reuses the first's register

    def xr(j):
        return x[j % len(x)]

    body = [f"vld1.32 {{d{4 * i}-d{4 * i + 3}}}, [%[blk]]" for i in range(3)]
    body.append("vld1.32 {d12-d15}, [%[blk]]!")
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
    body += [f"vst1.32 {qd(j)}, [%[out]], %[c4]" for j in range(G)]
    text = "\n".join(f'        "{ins}\\n\\t"' for ins in body)
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
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif"]
    for ks, s in ((3, 1), (3, 2), (5, 1), (5, 2)):
        out.append(shape(ks, s))
    out.append(generic())
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
