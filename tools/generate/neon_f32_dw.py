#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_f32_dw_loops.h: the hot loops of the AArch64 3x3 and 5x5
depthwise microkernels (groups of G outputs of one channel vector, every input inside the
image) as inline assembly, scheduled for in-order cores as tools/generate/neon_f32_gemm.py
explains for the GEMM tiles, which also suits the out-of-order ones:

- Each input row's window is loaded as one group ahead of its FMLAs (with its weights
  where they are not held in registers, the accumulators' starting values, the bias, on
  the first row, and the pointer arithmetic first, so that its latency hides behind the
  first loads): an in-order core that writes results back in program order (LLVM's
  Cortex-A53 model: a load issued after a 10-cycle FMLA waits for it) then waits once per
  row, not once per load.
- FMLAs go kx-major (for each tap of the row, the G outputs), so that consecutive FMLAs
  feed different accumulators: G independent chains. G is 10 where the registers allow it
  (3x3 stride 1): a 10-cycle FMLA (LLVM's A53 model) on 8 chains waits 2 cycles per tap.
- Loads use register offsets (1, 2, 3) * C bytes from the row or from row + 4k * C: one
  micro-op each, no post-indexing (a second micro-op on these cores), no pointer per
  pixel. The accumulators start from G loads of the bias rather than copies of one
  register, which would take the FMLA pipes of Neoverse N1.
- Every output's taps are added in the order ky, then kx, as by the C body (the border
  path) and the reference, so the results are the same bit for bit.

Registers: v0.. the G accumulators; 3x3 stride 1: v10-v18 the weights (loaded before the
loop), v19-v30 inputs; the others (G = 8): v8.. one row's weights (reloaded per row from
the caller's float32 copy), the rest inputs: a stride-2 row needs 17 (3x3) or 19 (5x5).

    python3 tools/generate/neon_f32_dw.py > csrc/kernels/generated/neon_f32_dw_loops.h
"""
import sys


def group(ks: int, s: int) -> int:
    """Outputs per group: 10 where the registers allow (3x3 stride 1), else 8."""
    return 10 if (ks, s) == (3, 1) else 8


def shape(ks: int, s: int, G: int = 0) -> str:
    """The loop of one shape; G outputs per group (default: group(ks, s))."""
    G = G or group(ks, s)
    T = (G - 1) * s + ks
    # all weights in registers where the window then still fits, else each row's own
    w_held = ks == 3 and s == 1
    if w_held:
        w_reg = lambda ky, kx: G + ky * 3 + kx
        in_first = G + 9
    else:
        w_reg = lambda ky, kx: G + kx
        in_first = G + ks
    n_in = 32 - in_first
    assert T <= n_in, "a row's window must fit in the free registers"
    reg = {t: in_first + t for t in range(T)}

    body = []
    for ky in range(ks):
        # the window: loads t = 4k + i from [p<k>, o<i>], p0 the row, p<k> = row + 4k * C
        # computed ahead of the group's first load (their latency hidden behind it)
        loads = [f"add %[p{k}], %[r{ky}], %[b{k}]" for k in range(1, (T - 1) // 4 + 1)]
        for t in range(T):
            base, off = divmod(t, 4)
            src = f"%[r{ky}]" if base == 0 else f"%[p{base}]"
            loads.append(f"ldr q{reg[t]}, [{src}" + (f", %[o{off}]]" if off else "]"))
        extra = []
        if not w_held:
            extra += [f"ldr q{w_reg(ky, kx)}, [%[w], #{16 * (ky * ks + kx)}]" for kx in range(ks)]
        if ky == 0:
            extra += [f"ldr q{j}, [%[bias]]" for j in range(G)]
        while loads or extra:
            if loads:
                body.append(loads.pop(0))
            if extra:
                body.append(extra.pop(0))
        for kx in range(ks):
            for j in range(G):
                body.append(f"fmla v{j}.4s, v{reg[j * s + kx]}.4s, v{w_reg(ky, kx)}.4s")
    tail = []
    for ky in range(ks):
        tail.append(f"add %[r{ky}], %[r{ky}], %[step]")
    tail.append("subs %[n], %[n], #1")
    # output j at base j // 4 (p<k> = out + 4k * C, the window's bases being free by now)
    base = "%[out]"
    for k in range((G + 3) // 4):
        if k:
            tail.append(f"add %[p{k}], {base}, %[b1]")
            base = f"%[p{k}]"
        for i in range(min(4, G - 4 * k)):
            tail.append(f"str q{4 * k + i}, [{base}" + (f", %[o{i}]]" if i else "]"))
    tail.append(f"add %[out], {base}, " + (f"%[o{G % 4}]" if G % 4 else "%[b1]"))
    pre = []
    if w_held:
        pre += [f"ldr q{G + i}, [%[w], #{16 * i}]" for i in range(9)]
    lab = f".Ldw{ks}x{ks}s{s}_loop%="
    asm = pre + [lab + ":"] + body + tail + [f"b.ne {lab}"]
    text = "\n".join(f'        "{ins}\\n\\t"' for ins in asm)
    rows = ", ".join(f'[r{ky}] "+r"(r{ky})' for ky in range(ks))
    rows_in = "\n".join(f"    const float *r{ky} = q[{ky}];" for ky in range(ks))
    nb = (T - 1) // 4
    ptrs = ", ".join(f'[p{k}] "=&r"(p{k})' for k in range(1, nb + 1))
    boffs = ", ".join(f'[b{k}] "r"(b{k})' for k in range(1, nb + 1))
    clobbers = ", ".join(f'"v{v}"' for v in range(32))
    held = 'weights held in registers' if w_held else "each row's weights loaded with its window"
    return f"""
/* {ks}x{ks}, stride {s}: groups of {G} outputs, {held}. */
static inline __attribute__((always_inline)) void dwn_loop_{ks}x{ks}s{s}(
    const float *const *q, float *out, uint64_t c4, uint64_t n, const vf *w, const vf *bias) {{
{rows_in}
    const uint64_t o2 = 2 * c4, o3 = 3 * c4, step = {G * s} * c4;
    uint64_t {", ".join(f"b{k} = {4 * k} * c4" for k in range(1, nb + 1))};
    const float {", ".join(f"*p{k}" for k in range(1, nb + 1))};
    __asm__ volatile(
{text}
        : {rows}, [out] "+r"(out), [n] "+r"(n), {ptrs}
        : [o1] "r"(c4), [o2] "r"(o2), [o3] "r"(o3), {boffs}, [step] "r"(step),
          [w] "r"(w), [bias] "r"(bias)
        : {clobbers}, "cc", "memory");
}}
"""


def main() -> int:
    out = ["/* Generated by tools/generate/neon_f32_dw.py: do not edit. The hot loops of the AArch64",
           " * depthwise microkernels; see the generator for the schedule.",
           " * dwn_loop_<K>x<K>s<S>(q, out, c4, n, w, bias) runs n >= 1 groups of G outputs of one",
           " * channel vector (G: DWN_GROUP(K, S)): q[ky] is input row ky at the group's first window",
           " * column, pixels c4 bytes apart, as are the outputs from out; w holds the K*K float32",
           " * weight vectors (ky-major), bias G copies of the bias vector. Writes the raw sums (bias",
           " * and taps). */",
           "#ifndef MNV3_NEON_F32_DW_LOOPS_H", "#define MNV3_NEON_F32_DW_LOOPS_H", "",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif"]
    for ks, s in ((3, 1), (3, 2), (5, 1), (5, 2)):
        out.append(shape(ks, s))
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
