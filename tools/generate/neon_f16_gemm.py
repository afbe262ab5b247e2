#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_f16_gemm_loops.h: the k loops of the float16-arithmetic
(relaxed precision) AArch64 GEMM tiles of arm/neon_f16_body.h, 1 to 8 rows by 8 output channels
(one .8h vector per row), as inline assembly. One schedule serves every core that has
FP16 arithmetic, the in-order Cortex-A55 and the out-of-order Cortex-A76/Neoverse N1:

- One iteration is 8 k steps: each row's 8 inputs are one load, multiplied by element
  (FMLA .8h by element: the indexed register must be in v0-v15, so the inputs live in
  v0-v7), the 8 weight vectors 8 loads. An in-order core issues instructions in program
  order and writes results back in order (tools/generate/neon_f32_gemm.py explains what that
  costs in LLVM's models), so the iteration's loads and integer work (pointers, prefetch
  cursor, loop count) form one group ahead of its FMLAs, weights and inputs alternating so
  that the first FMLAs' operands arrive first. Loads use immediate offsets from bases
  advanced once per iteration (a post-indexed load costs a second micro-op on these cores;
  a Q-register ldp occupies the A55's load pipe for several cycles).
- Every tile height splits k over the same two accumulators per row (even and odd steps
  of the loop; the k % 8 steps after it go to the first), widened and added in float32
  after the loop. One split for every height keeps a pixel's arithmetic independent of
  the tile it falls in, so of where a thread's range of pixels starts (bit-identical at
  any thread count); two fit the 8-row tile (16 accumulators, the initial value read
  from memory since no vector register is left) and double the chains of short tiles,
  which stay latency-bound (2R chains).

Registers: v0-v7 the rows' inputs, v8-v23 the accumulators, v24-v31 the 8 steps' weights.

    python3 tools/generate/neon_f16_gemm.py > csrc/kernels/generated/neon_f16_gemm_loops.h
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neon_f32_gemm import Macro, Seq, asm_block, expand, header_macros  # noqa: E402

MAX_ROWS = 8
STEPS = 8


# Accumulators per row, the same for every tile height (see the module's docstring).
SPLIT = 2


def acc_reg(rows: int, r: int, step: int) -> int:
    return 8 + r * SPLIT + step % SPLIT


def body(rows: int):
    w_loads = [f"ldr q{24 + i}, [%[w], #{16 * i}]" for i in range(STEPS)]
    a_loads = [f"ldr q{r}, [%[a{r}]]" for r in range(rows)]
    loads = []
    for i, wl in enumerate(w_loads):
        loads.append(wl)
        if i < rows:
            loads.append(a_loads[i])
    # integer work pairs with the loads (other pipes); the pointer adds come after the
    # last load from their register
    ints = ["prfm pldl1keep, [%[pf]]", "add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]",
            "csel %[pf], %[tmp], %[pf], ne"]
    group = []
    for ld in loads:
        group.append(ld)
        if ints:
            group.append(ints.pop(0))
    group += ints
    group += [f"add %[a{r}], %[a{r}], #16" for r in range(rows)]
    group += [f"add %[w], %[w], #{16 * STEPS}", "subs %[n], %[n], #1"]
    fmlas = [f"fmla v{acc_reg(rows, r, j)}.8h, v{24 + j}.8h, v{r}.h[{j}]"
             for j in range(STEPS) for r in range(rows)]
    return group + fmlas


# ---- The header's macros (neon_f32_gemm.Macro) ------------------------------------------
# Two accumulators a row: the even k steps' and the odd ones' (F16G_EVEN_, F16G_ODD_).
assert SPLIT == 2
SEP = "\\n\\t"

W_LOAD = Macro("F16G_W", ["V", "OFF"], lambda v, off: [f"ldr q{v}, [%[w], #{off}]"],
               "F16G_W(V, OFF), F16G_A(R): the weights of a k step into vV from byte OFF of "
               "the iteration's panel; row R's 8 inputs into vR.")
A_LOAD = Macro("F16G_A", ["R"], lambda r: [f"ldr q{r}, [%[a{r}]]"], None)
PF = ["prfm pldl1keep, [%[pf]]", "add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]",
      "csel %[pf], %[tmp], %[pf], ne"]


def _w(i: int):
    return W_LOAD(24 + i, 16 * i)


GROUP_1 = Macro("F16G_GROUP_1", None,
                lambda: [_w(0), PF[0], A_LOAD(0), PF[1], _w(1), PF[2], _w(2), PF[3]] +
                [_w(i) for i in range(3, STEPS)],
                "F16G_GROUP_1: the 1-row tile's loads (body): the weights with its inputs "
                "second, the prefetch cursor's work paired with the first four.")
GROUP = Macro("F16G_GROUP", [f"A{r}" for r in range(2, MAX_ROWS)],
              lambda *rows: [_w(0), PF[0], A_LOAD(0), PF[1], _w(1), PF[2], A_LOAD(1), PF[3]] +
              [x for i in range(2, STEPS) for x in (_w(i), rows[i - 2])],
              "F16G_GROUP(A2, ..., A7): the loads of a tile of 2 or more rows (body): weight "
              "vector i, then row i's inputs (rows 0 and 1, then A2.., empty past the tile's "
              "last row), the prefetch cursor's work paired with the first four.")
ADD_A = Macro("F16G_ADD_A", ["R"], lambda r: [f"add %[a{r}], %[a{r}], #16"],
              "F16G_ADD_A(R): row R's pointer steps past its 8 inputs (after the loads).")


NEXT = Macro("F16G_NEXT", None, lambda: [f"add %[w], %[w], #{16 * STEPS}", "subs %[n], %[n], #1"],
             "F16G_NEXT: the panel pointer steps past the iteration's weights; the count.")

FMLA = Macro("F16G_FMLA", ["A", "W", "X", "J"], lambda a, w, x, j: [f"fmla v{a}.8h, v{w}.8h, v{x}.h[{j}]"],
             "F16G_FMLA(A, W, X, J): vA += weights vW times lane J of row inputs vX.")


def _parity_family(name: str, parity: int, doc: str) -> dict:
    fam = {}
    for rows in range(1, MAX_ROWS + 1):
        def body(j, w, rows=rows):
            r = rows - 1
            return ([fam[r](j, w)] if r else []) + [FMLA(acc_reg(rows, r, parity), w, r, j)]
        fam[rows] = Macro(f"{name}_{rows}", ["J", "W"], body, None if rows > 1 else doc)
    return fam


EVEN = _parity_family("F16G_EVEN", 0,
                      "F16G_EVEN_<rows>(J, W), F16G_ODD_<rows>(J, W): k step J (even, odd) of "
                      "a tile: every row's FMLA by element into its first, second accumulator "
                      "(each macro adds a row to the one before).")
ODD = _parity_family("F16G_ODD", 1, None)
STEPS_MACRO = Macro("F16G_STEPS", ["EVEN", "ODD"],
                    lambda even, odd: [(even if j % SPLIT == 0 else odd)(j, 24 + j)
                                       for j in range(STEPS)],
                    "F16G_STEPS(EVEN, ODD): the iteration's 8 k steps, EVEN and ODD a tile's "
                    "F16G_EVEN_<rows>, F16G_ODD_<rows>.")

ROW_INIT = Macro("F16G_ROW_INIT", ["A0", "A1"],
                 lambda a0, a1: [f"ldr q{a0}, [%[init]]", f"movi v{a1}.8h, #0"],
                 "F16G_ROW_INIT(A0, A1): a row's first accumulator starts at init, the second "
                 "at zero.")
STP = Macro("F16G_STP", ["A0", "A1", "OFF"], lambda a0, a1, off: [f"stp q{a0}, q{a1}, [%[acc], #{off}]"],
            "F16G_STP(A0, A1, OFF): a row's accumulators to acc at byte offset OFF.")
def asm_code(rows: int) -> list:
    """The asm statement of a tile as macro uses."""
    group = GROUP_1 if rows == 1 else GROUP(*([A_LOAD(r) for r in range(2, rows)] +
                                             [None] * (MAX_ROWS - max(rows, 2))))
    return [Seq(ROW_INIT(8 + 2 * r, 9 + 2 * r) for r in range(rows)), ".Lf16a_gemm_loop%=:",
            group, Seq(ADD_A(r) for r in range(rows)), NEXT,
            STEPS_MACRO(EVEN[rows], ODD[rows]), "b.ne .Lf16a_gemm_loop%=",
            Seq(STP(8 + 2 * r, 9 + 2 * r, 32 * r) for r in range(rows))]


def function(rows: int) -> str:
    s = SPLIT
    nacc = rows * s
    init = []
    for r in range(rows):
        for i in range(s):
            reg = 8 + r * s + i
            # from memory: the 8-row tile's 16 accumulators, 8 inputs and 8 weights take
            # every vector register, none is left for an input operand
            init.append(f"ldr q{reg}, [%[init]]" if i == 0 else f"movi v{reg}.8h, #0")
    store = [f"stp q{8 + i}, q{9 + i}, [%[acc], #{16 * i}]" for i in range(0, nacc - 1, 2)]
    if nacc % 2:
        store.append(f"str q{8 + nacc - 1}, [%[acc], #{16 * (nacc - 1)}]")
    asm = init + [".Lf16a_gemm_loop%=:"] + body(rows) + ["b.ne .Lf16a_gemm_loop%="] + store
    code = asm_code(rows)
    if expand(code) != asm:
        raise SystemExit(f"neon_f16_gemm: the macros of the {rows}-row tile are not its schedule")
    text = asm_block(code, SEP)
    ptrs = ", ".join(f"*a{r} = a[{r}]" for r in range(rows))
    ptrs_back = " ".join(f"a[{r}] = a{r};" for r in range(rows))
    outs = ", ".join([f'[a{r}] "+&r"(a{r})' for r in range(rows)] +
                     ['[w] "+&r"(wp)', '[n] "+&r"(n)', '[pf] "+&r"(pfp)', '[tmp] "=&r"(tmp)'])
    clobbers = ", ".join(f'"v{v}"' for v in list(range(rows)) + list(range(8, 8 + nacc)) +
                         list(range(24, 32)))
    return f"""
/* {rows} row{'s' if rows > 1 else ''}: {nacc} accumulators ({s} per row). */
static inline __attribute__((always_inline)) void f16_gemm_kloop_{rows}(
    const float16_t **a, const uint16_t **w, uint64_t n, const char **pf, const char *pf_end,
    float16x8_t init, float16x8_t *acc) {{
    const float16_t {ptrs};
    const uint16_t *wp = *w;
    const char *pfp = *pf;
    uint64_t tmp;
    __asm__ volatile(
{text}
        : {outs}
        : [pf_end] "r"(pf_end), [init] "r"(&init), [acc] "r"(acc)
        : {clobbers}, "cc", "memory");
    {ptrs_back}
    *w = wp;
    *pf = pfp;
}}
"""


def main() -> int:
    out = ["/* Generated by tools/generate/neon_f16_gemm.py: do not edit. The k loops of the AArch64",
           " * float16-arithmetic GEMM tiles (arm/neon_f16_body.h); see the generator for the schedule.",
           " * f16_gemm_kloop_<rows>(a, w, n, pf, pf_end, init, acc) runs n >= 1 iterations of 8",
           " * k steps: a[r] are the rows' float16 inputs, *w the panel (8 halves per k step);",
           " * accumulator 0 of each row starts at init, the others at zero, and they end in",
           " * acc[r * F16A_GEMM_SPLIT + i]; the pointers are advanced past what was consumed. */",
           "#ifndef MNV3_NEON_F16_GEMM_LOOPS_H", "#define MNV3_NEON_F16_GEMM_LOOPS_H", "",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif", ""]
    out.append(f"#define F16A_GEMM_SPLIT {SPLIT}")
    out.append("")
    out.append(header_macros([asm_code(rows) for rows in range(1, MAX_ROWS + 1)], SEP))
    for rows in range(1, MAX_ROWS + 1):
        out.append(function(rows))
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
