#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_q8_dw_loops.h: the tap loops of the AArch64 int8 depthwise
(arm/neon_q8.c) for 3x3, 5x5 and 7x7 kernels at stride 1 and 2, as inline assembly.

One loop iteration is one kernel row (ky) of a block of 4 output pixels of 8 channels:
8 * K SMLAL / SMLAL2 into 8 accumulators (4 pixels x low and high channel halves) from the
K weight vectors and the (3 * stride + K) input columns that the 4 outputs share. The
schedule is fitted to LLVM's in-order models (llvm-mca 19), which write results back in
program order, so that a load placed after a multiply issues beside it instead of waiting
for it:
- every load has a register offset (`ldr q, [base, offset]`, latency 4 like SMLAL on the
  Cortex-A55 model, where it issues in the multiply's cycle; an immediate offset, latency
  3, costs a cycle there): the offsets 16, 32, ... are constants in registers, shared by
  the input columns and the weights, the first column's is xzr;
- loads run one kernel row ahead: each follows a multiply, the most urgent one whose
  register that row's multiplies no longer read, so the next row's columns and weights
  are in registers when its first multiply issues. The first row is loaded before the
  loop, the loop runs K - 1 times and the last row is peeled without loads, so nothing
  is read past the block's rows or its weights;
- the caller's row pointers plus the block offset are an array indexed by one register
  counting up to zero: its `adds` opens an iteration (the model issues the first
  instruction after the branch beside the first multiply) and closes the loop; the next
  row's pointer is loaded from the array, its first loads come a few multiplies later.
Modelled fractions of the SMLAL bound, 3x3 / 5x5 / 7x7 at stride 1 and 2 (loads grouped
ahead of the multiplies before): Cortex-A53 0.62 / 0.57, 0.68 / 0.65, 0.71 / 0.68 (0.57 /
0.53, 0.65 / 0.62, 0.68 / 0.66); Cortex-A55 0.77 / 0.77, 0.85 / 0.85, 0.89 / 0.89 (0.62 /
0.57, 0.68 / 0.65, 0.71 / 0.68); A72 (A57 model) and Neoverse-N1 1.00 as before.

The caller passes rows[0..K-1]: the converted input row of each kernel row, `at` the byte
offset of the block in every row, w the block's first weight vector ([ky][kx][8] int16).

    python3 tools/generate/neon_q8_dw.py > csrc/kernels/generated/neon_q8_dw_loops.h
"""

VARIANTS = [(k, s) for k in (3, 5, 7) for s in (1, 2)]
PIXELS = 4
# Registers: v0-v12 the input columns, v16-v23 the accumulators (read from and written
# back to acc[0..7] by the loop: as operands, they would leave too few of GCC's 30 for the
# offsets), v24-v30 the weights.
ACC = 16
# The next row's pointer is loaded at the top of the iteration: loads from it start after
# this many multiplies (weight loads may come earlier).
FIRST_NEXT_LOAD = 4


def macs_of(k: int, s: int) -> list:
    """The iteration's multiplies as (text, input column, weight index)."""
    macs = []
    for kx in range(k):
        for p in range(PIXELS):
            c = p * s + kx
            macs.append((f"smlal v{ACC + 2 * p}.4s, v{c}.4h, v{24 + kx}.4h", c, kx))
            macs.append((f"smlal2 v{ACC + 2 * p + 1}.4s, v{c}.8h, v{24 + kx}.8h", c, kx))
    return macs


def off(i: int) -> str:
    return "xzr" if i == 0 else f"%[o{i}]"


def loads_of(k: int, s: int) -> list:
    """(register, text, index of the last multiply reading it, index of the first)."""
    macs = macs_of(k, s)
    cols = (PIXELS - 1) * s + k
    out = []
    for kx in range(k):
        readers = [i for i, m in enumerate(macs) if m[2] == kx]
        out.append((24 + kx, f"ldr q{24 + kx}, [%[w], {off(kx)}]", readers[-1], readers[0]))
    for c in range(cols):
        readers = [i for i, m in enumerate(macs) if m[1] == c]
        out.append((c, f"ldr q{c}, [%[xn], {off(c)}]", readers[-1], readers[0]))
    return out


def schedule(k: int, s: int) -> list:
    macs = macs_of(k, s)
    pending = loads_of(k, s)
    out = ["adds %[i], %[i], #8", f"add %[w], %[w], #{16 * k}", "ldr %[xn], [%[xs], %[i]]"]
    for i, m in enumerate(macs):
        out.append(m[0])
        ready = [ld for ld in pending if ld[2] <= i and i + 1 >= FIRST_NEXT_LOAD]
        if ready:
            ld = min(ready, key=lambda x: x[3])
            pending.remove(ld)
            out.append(ld[1])
    out += [ld[1] for ld in sorted(pending, key=lambda x: x[3])]
    return out


def function(k: int, s: int) -> str:
    cols = (PIXELS - 1) * s + k
    loads = sorted(loads_of(k, s), key=lambda x: x[3])
    body = schedule(k, s)
    accs = [f"ldp q{ACC + j}, q{ACC + j + 1}, [%[acc], #{16 * j}]" for j in range(0, 8, 2)]
    store = [f"stp q{ACC + j}, q{ACC + j + 1}, [%[acc], #{16 * j}]" for j in range(0, 8, 2)]
    lines = (["ldr %[xn], [%[xs], %[i]]"] + accs + [ld[1] for ld in loads] +
             [".Lq8_dw_loop%=:"] + body + ["b.ne .Lq8_dw_loop%="] +
             [m[0] for m in macs_of(k, s)] + store)
    asm = "\n".join(f'        "{line}\\n"' for line in lines)
    offs = ", ".join(f'[o{i}] "r"((uint64_t){16 * i})' for i in range(1, max(cols, k)))
    clobbers = ([f'"v{i}"' for i in range(cols)] + [f'"v{ACC + i}"' for i in range(8)] +
                [f'"v{24 + i}"' for i in range(k)])
    return f"""/* {k}x{k}, stride {s}: {8 * k} SMLAL per kernel row. */
static void mnv3_q8_dwconv_k{k}s{s}_8c4__neon(const int16_t *const *rows, size_t at,
                                      const int16_t *w, int32x4_t *acc) {{
    const char *xs[{k}];
    const char *xn;
    uint64_t i = (uint64_t)0 - {8 * (k - 1)}u;
    unsigned ky;
    for (ky = 0; ky < {k}u; ++ky) xs[ky] = (const char *)(const void *)rows[ky] + at;
    __asm__ volatile(
{asm}
        : [w] "+r"(w), [i] "+r"(i), [xn] "=&r"(xn)
        : [xs] "r"(xs + {k - 1}), [acc] "r"(acc), {offs}
        : {", ".join(clobbers)}, "cc", "memory");
}}
"""


def main() -> None:
    print("/* Generated by tools/generate/neon_q8_dw.py; do not edit. */")
    print("#ifndef MNV3_NEON_Q8_DW_LOOPS_H")
    print("#define MNV3_NEON_Q8_DW_LOOPS_H")
    print("""
/* An assembly body is one string, longer than the 4095 characters ISO C asks every
 * compiler to accept; GCC and Clang, the only ones that read GNU inline assembly,
 * take any length. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Woverlength-strings"
#endif
""")
    for k, s in VARIANTS:
        print(function(k, s))
    print("""#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif""")


if __name__ == "__main__":
    main()
