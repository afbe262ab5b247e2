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

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neon_f32_gemm import Macro, Seq, c_code, c_comment, expand, header_macros, wrap  # noqa: E402

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
    """(register, text, index of the last multiply reading it, index of the first, base
    "w" or "xn", offset / 16)."""
    macs = macs_of(k, s)
    cols = (PIXELS - 1) * s + k
    out = []
    for kx in range(k):
        readers = [i for i, m in enumerate(macs) if m[2] == kx]
        out.append((24 + kx, f"ldr q{24 + kx}, [%[w], {off(kx)}]", readers[-1], readers[0],
                    "w", kx))
    for c in range(cols):
        readers = [i for i, m in enumerate(macs) if m[1] == c]
        out.append((c, f"ldr q{c}, [%[xn], {off(c)}]", readers[-1], readers[0], "xn", c))
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


def function_lines(k: int, s: int) -> list:
    """The instructions of one variant: the first row's loads, the loop over the other rows
    (each loading the next), the last row peeled without loads."""
    loads = sorted(loads_of(k, s), key=lambda x: x[3])
    accs = [f"ldp q{ACC + j}, q{ACC + j + 1}, [%[acc], #{16 * j}]" for j in range(0, 8, 2)]
    store = [f"stp q{ACC + j}, q{ACC + j + 1}, [%[acc], #{16 * j}]" for j in range(0, 8, 2)]
    return (["ldr %[xn], [%[xs], %[i]]"] + accs + [ld[1] for ld in loads] +
            [".Lq8_dw_loop%=:"] + schedule(k, s) + ["b.ne .Lq8_dw_loop%="] +
            [m[0] for m in macs_of(k, s)] + store)


# ---- The header's macros (neon_f32_gemm.Macro) ------------------------------------------
SEP = "\\n"

START = Macro("Q8DW_START", None,
              lambda: ["ldr %[xn], [%[xs], %[i]]"] +
              [f"ldp q{ACC + j}, q{ACC + j + 1}, [%[acc], #{16 * j}]" for j in range(0, 8, 2)],
              "Q8DW_START: the first kernel row's input pointer; the accumulators from acc.")
STORE = Macro("Q8DW_STORE", None,
              lambda: [f"stp q{ACC + j}, q{ACC + j + 1}, [%[acc], #{16 * j}]" for j in range(0, 8, 2)],
              "Q8DW_STORE: the accumulators back to acc.")
NEXT_ROW = Macro("Q8DW_NEXT_ROW", ["WSTEP"],
                 lambda wstep: ["adds %[i], %[i], #8", f"add %[w], %[w], #{wstep}",
                                "ldr %[xn], [%[xs], %[i]]"],
                 "Q8DW_NEXT_ROW(WSTEP): an iteration opens: the row index steps (its flags close "
                 "the loop), the weights by a kernel row (WSTEP bytes), the next row's pointer is "
                 "loaded.")
LDW0 = Macro("Q8DW_LDW0", ["V"], lambda v: [f"ldr q{v}, [%[w], xzr]"],
             "Q8DW_LDW0(V), Q8DW_LDW(V, I), Q8DW_LDX0(V), Q8DW_LDX(V, I): weight vector vV, input "
             "column vV of the row at %[xn], at offset 0 or 16 * I (%[oI]).")
LDW = Macro("Q8DW_LDW", ["V", "I"], lambda v, i: [f"ldr q{v}, [%[w], %[o{i}]]"], None)
LDX0 = Macro("Q8DW_LDX0", ["V"], lambda v: [f"ldr q{v}, [%[xn], xzr]"], None)
LDX = Macro("Q8DW_LDX", ["V", "I"], lambda v, i: [f"ldr q{v}, [%[xn], %[o{i}]]"], None)
KEEP = Macro("Q8DW_KEEP", ["L"], lambda ld: [ld],
             "Q8DW_KEEP(L), Q8DW_DROP(L): a load of the next kernel row, kept in the loop, left "
             "out of the peeled last row.")
DROP = Macro("Q8DW_DROP", ["L"], lambda ld: [], None, drops=("L",))
MAC = Macro("Q8DW_MAC", ["A0", "A1", "X", "W", "L0", "L1"],
            lambda a0, a1, x, w, l0, l1: [f"smlal v{a0}.4s, v{x}.4h, v{w}.4h", l0,
                                          f"smlal2 v{a1}.4s, v{x}.8h, v{w}.8h", l1],
            "Q8DW_MAC(A0, A1, X, W, L0, L1): one pixel's SMLAL, SMLAL2 of a tap: channels 0-3, "
            "4-7 into vA0, vA1 += input column vX times weights vW, each followed by L<i> (the "
            "load the schedule places there, or empty).")
TAP = Macro("Q8DW_TAP", ["X0", "X1", "X2", "X3", "W"] + [f"L{i}" for i in range(8)],
            lambda *a: [MAC(ACC + 2 * p, ACC + 2 * p + 1, a[p], a[4], a[5 + 2 * p], a[6 + 2 * p])
                        for p in range(PIXELS)],
            "Q8DW_TAP(X0, X1, X2, X3, W, L0, ..., L7): one tap (weights vW) of the 4 pixels, "
            "pixel p's input column vX<p> (Q8DW_MAC into its accumulators v16 + 2p, v17 + 2p).")


def load_use(ld: tuple):
    """A load of loads_of as a macro use."""
    reg, _, _, _, base, i = ld
    if i == 0:
        return (LDW0 if base == "w" else LDX0)(reg)
    return (LDW if base == "w" else LDX)(reg, i)


def row_slots(k: int, s: int):
    """The loop's kernel row as (taps, rest): each tap's 8 multiplies with the load the
    schedule places after each (or None), the loads after the last multiply."""
    items = schedule(k, s)[3:]
    loads = {ld[1]: ld for ld in loads_of(k, s)}
    slots, i = [], 0
    for m in macs_of(k, s):
        assert items[i] == m[0]
        i += 1
        slot = None
        if i < len(items) and items[i] in loads:
            slot = loads[items[i]]
            i += 1
        slots.append(slot)
    taps = [slots[2 * PIXELS * kx:2 * PIXELS * (kx + 1)] for kx in range(k)]
    return taps, [loads[x] for x in items[i:]]


STEADY = Macro("Q8DW_STEADY", ["X0", "X1", "X2", "X3", "W", "NEXT"],
               lambda x0, x1, x2, x3, w, nxt: [TAP(x0, x1, x2, x3, w, None, nxt(LDX(x0, x0)),
                                                   None, None, None, None, None,
                                                   nxt(LDW(w, x0)))],
               "Q8DW_STEADY(X0, X1, X2, X3, W, NEXT): a tap kx = X0 (between the first and the "
               "last two) that loads the next row's input column kx after its first pixel "
               "and its weights after its last.")
WIDE = Macro("Q8DW_WIDE", ["X0", "X1", "X2", "X3", "W", "L0", "NEXT"],
             lambda x0, x1, x2, x3, w, l0, nxt: [TAP(x0, x1, x2, x3, w, l0, nxt(LDX(x0, x0)), None,
                                                     nxt(LDX(x1, x1)), None, nxt(LDX(x2, x2)),
                                                     None, nxt(LDW(w, x0)))],
             "Q8DW_WIDE(X0, X1, X2, X3, W, L0, NEXT): a tap near the end that loads the next "
             "row's input columns of its first three pixels after them and its weights after "
             "the last, L0 (a load, or empty) after the first multiply.")


def steady_family(s: int) -> dict:
    fam = {}
    for n in range(0, 6):
        def body(nxt, n=n):
            if n == 0:
                return []
            return [fam[n - 1](nxt), STEADY(*[n + p * s for p in range(PIXELS)], 24 + n, nxt)]
        fam[n] = Macro(f"Q8DW_STEADY_S{s}_{n}", ["NEXT"], body,
                       None if n or s > 1 else
                       "Q8DW_STEADY_S<s>_<n>(NEXT): taps 1 to n of stride s, each a Q8DW_STEADY "
                       "(none for n = 0; each macro adds a tap to the one before).",
                       drops=("NEXT",) if n == 0 else ())
    return fam


STEADIES = {s: steady_family(s) for s in (1, 2)}


def _row_s_body(s: int):
    def body(steady, *a):
        nxt = a[-1]
        first = TAP(*[p * s for p in range(PIXELS)], 24, None, None, None, nxt(LDX0(0)),
                    None, None, None, nxt(LDW0(24)))
        if s == 1:
            x0, x1, x2, x3, w = a[:5]
            return [first, steady(nxt), WIDE(x0, x1, x2, x3, w, None, nxt), nxt(LDX(x3, x3))]
        y0, y1, y2, y3, v, e, x0, x1, x2, x3, w = a[:11]
        return [first, steady(nxt), WIDE(y0, y1, y2, y3, v, None, nxt),
                WIDE(x0, x1, x2, x3, w, nxt(LDX(e, e)), nxt), nxt(LDX(x3, x3))]
    return body


ROW_S = {
    1: Macro("Q8DW_ROW_S1", ["STEADY", "X0", "X1", "X2", "X3", "W", "NEXT"], _row_s_body(1),
             "Q8DW_ROW_S1(STEADY, X0, X1, X2, X3, W, NEXT), Q8DW_ROW_S2(STEADY, Y0, ..., Y3, V, "
             "E, X0, ..., X3, W, NEXT): the multiplies of one kernel row at stride 1, 2, tap by "
             "tap, with the next row's loads among them through NEXT (Q8DW_KEEP in the loop, "
             "Q8DW_DROP in the peeled last row): the first tap, the steady ones (STEADY, a "
             "Q8DW_STEADY_S<s>_<n>), at stride 2 the last but one (Y, V) and the last (X, W; "
             "column E after its first multiply) loading more columns, then the last column."),
    2: Macro("Q8DW_ROW_S2", ["STEADY", "Y0", "Y1", "Y2", "Y3", "V", "E", "X0", "X1", "X2",
                             "X3", "W", "NEXT"], _row_s_body(2), None),
}


def row_args(k: int, s: int) -> list:
    """Q8DW_ROW_S<s>'s arguments for k (the row's taps must have its pattern)."""
    cols = lambda kx: [p * s + kx for p in range(PIXELS)]  # noqa: E731
    wide = 1 if s == 1 else 2
    args = [STEADIES[s][k - 1 - wide]]
    if s == 2:
        args += cols(k - 2) + [22 + k, cols(k - 1)[-1] - 1]
    return args + cols(k - 1) + [23 + k]


def _row_body(k: int, s: int):
    return lambda nxt: [ROW_S[s](*row_args(k, s), nxt)]


ROW = {(k, s): Macro(f"Q8DW_ROW_K{k}S{s}", ["NEXT"], _row_body(k, s),
                     "Q8DW_ROW_K<k>S<s>(NEXT): one kernel row of a variant (Q8DW_ROW_S<s>)."
                     if (k, s) == VARIANTS[0] else None)
       for k, s in VARIANTS}


def row_check(k: int, s: int) -> None:
    """The row macro spells out the schedule's row (with its loads, and without)."""
    taps, rest = row_slots(k, s)
    loop = [m[0] for m in macs_of(k, s)]
    with_loads = []
    for kx, tap in enumerate(taps):
        for i, ld in enumerate(tap):
            with_loads.append(loop[2 * PIXELS * kx + i])
            if ld:
                with_loads.append(ld[1])
    with_loads += [ld[1] for ld in rest]
    if expand(ROW[(k, s)](KEEP)) != with_loads or expand(ROW[(k, s)](DROP)) != loop:
        raise SystemExit(f"neon_q8_dw: the {k}x{k} stride-{s} row does not have the pattern of "
                         f"Q8DW_ROW_S{s}; write its taps with Q8DW_TAP")


def function_macro() -> str:
    """Q8DW_FUNCTION: a variant's function around its first loads and its row macro."""
    lines = [
        "static void NAME(const int16_t *const *rows, size_t at, const int16_t *w, int32x4_t *acc) {",
        "    const char *xs[K];",
        "    const char *xn;",
        "    uint64_t i = (uint64_t)0 - I0;",
        "    unsigned ky;",
        "    for (ky = 0; ky < K##u; ++ky) xs[ky] = (const char *)(const void *)rows[ky] + at;",
        "    __asm__ volatile(",
        "        Q8DW_START",
        "        FIRST",
        '        ".Lq8_dw_loop%=:\\n"',
        "        Q8DW_NEXT_ROW(WSTEP)",
        "        ROW(Q8DW_KEEP)",
        '        "b.ne .Lq8_dw_loop%=\\n"',
        "        ROW(Q8DW_DROP)",
        "        Q8DW_STORE",
        '        : [w] "+r"(w), [i] "+r"(i), [xn] "=&r"(xn)',
        '        : [xs] "r"(xs + KM1), [acc] "r"(acc), __VA_ARGS__);',
        "}"]
    doc = c_comment("Q8DW_FUNCTION(NAME, K, I0, KM1, WSTEP, FIRST, ROW, operands...): defines "
                    "NAME(rows, at, w, acc), the K x K variant: the first kernel row's loads "
                    "(FIRST), the loop over the other rows, each loading the next (ROW, the "
                    "variant's Q8DW_ROW_, with Q8DW_KEEP), the last row peeled (with "
                    "Q8DW_DROP); the row index i counts up to zero from I0 = 8 (K - 1); "
                    "WSTEP is a kernel row of weights in bytes; the operands end with the "
                    "column offsets %[o<c>] and, after a colon, the clobbers.")
    return "\n".join(doc + ["#define Q8DW_FUNCTION(NAME, K, I0, KM1, WSTEP, FIRST, ROW, ...) \\"] +
                     [ln + " \\" for ln in lines[:-1]] + [lines[-1]])


def asm_code(k: int, s: int) -> list:
    loads = sorted(loads_of(k, s), key=lambda x: x[3])
    return [START, Seq(load_use(ld) for ld in loads), ".Lq8_dw_loop%=:",
            NEXT_ROW(16 * k), ROW[(k, s)](KEEP), "b.ne .Lq8_dw_loop%=", ROW[(k, s)](DROP), STORE]


def function(k: int, s: int) -> str:
    cols = (PIXELS - 1) * s + k
    row_check(k, s)
    if expand(asm_code(k, s)) != function_lines(k, s):
        raise SystemExit(f"neon_q8_dw: the macros of {k}x{k} stride {s} are not its schedule")
    loads = sorted(loads_of(k, s), key=lambda x: x[3])
    first = wrap(c_code(Seq(load_use(ld) for ld in loads), SEP), " " * len("Q8DW_FUNCTION("))
    offs = ", ".join(f'[o{i}] "r"((uint64_t){16 * i})' for i in range(1, max(cols, k)))
    clobbers = ([f'"v{i}"' for i in range(cols)] + [f'"v{ACC + i}"' for i in range(8)] +
                [f'"v{24 + i}"' for i in range(k)])
    head = f"Q8DW_FUNCTION(mnv3_q8_dwconv_k{k}s{s}_8c4__neon, {k}, {8 * (k - 1)}u, {k - 1}, {16 * k},"
    indent = " " * len("Q8DW_FUNCTION(")
    return "\n".join(c_comment(f"{k}x{k}, stride {s}: {8 * k} SMLAL per kernel row.") + [head] +
                     first[:-1] + [first[-1] + ","] +
                     [f"{indent}Q8DW_ROW_K{k}S{s},", f"{indent}{offs}",
                      f"{indent}: {', '.join(clobbers)}, \"cc\", \"memory\")", ""])


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
    print(header_macros([asm_code(k, s) for k, s in VARIANTS], SEP))
    print()
    print(function_macro())
    print()
    for k, s in VARIANTS:
        print(function(k, s))
    print("""#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif""")


if __name__ == "__main__":
    main()
