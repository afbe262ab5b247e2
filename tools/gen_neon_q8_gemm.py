#!/usr/bin/env python3
"""Writes csrc/kernels/arm_neon_q8_gemm_loops.h: the k loops of the AArch64 int8 GEMM tiles
(arm_neon_q8.c) as inline assembly: SMLAL (1 to 8 rows x 8 columns, rows prepared as
int16 x - in_zp, weights packed [k][8] as int16 w - weight_zp) and SDOT (1 to 4 rows x 16
columns, int8 rows, weights packed [k/4][16][4]).

One iteration is 8 k steps: the 8 weight vectors and every row's 8 inputs are loaded as
one group ahead of the multiplies, then SMLAL / SMLAL2 by element into the accumulators.
The order is fixed for the in-order cores (Cortex-A53, A55), for the reasons
tools/gen_neon_inorder.py gives: they write results back in program order, so a load
behind a multiply waits for it, and the grouped loads pay that wait once per iteration;
immediate offsets from bases advanced once per iteration, no post-indexed loads.
Tiles with few rows split k over several accumulators per output vector (added after the
loop), so that at least 8 independent chains cover the multiply latency.

SMLAL registers: v0-v7 the rows' inputs (8 k each; by-element operands must lie in
v0-v15), v8-v23 the accumulators, v24-v31 the weights of the 8 k steps.
SDOT: groups of 4 k, 4 per iteration for 1 row (whose 16 weight vectors then need a
load each per 16 multiply-accumulate instructions, the fewest loads a row can have) and 2
for more rows; v0-v3 the rows' bytes, v4-v19 the accumulators (4 column vectors per row;
1 row splits them over odd and even groups), the weights of group g, column vector c in
v(32 - 4 * groups + 4g + c). The caller runs the groups left over outside the loop.

    python3 tools/gen_neon_q8_gemm.py > csrc/kernels/arm_neon_q8_gemm_loops.h
"""

MAX_ROWS = 8
K_STEPS = 8


def split_of(rows: int) -> int:
    """Accumulators per output vector: 2 * rows * split >= 8 chains, at most 16 registers."""
    return {1: 8, 2: 4, 3: 2, 4: 2}.get(rows, 1)


def acc_reg(rows: int, r: int, col: int, step: int) -> int:
    s = split_of(rows)
    return 8 + (r * 2 + col) * s + step % s


def load_group(a_loads: list, w_loads: list, rows: int, a_bytes: int, w_bytes: int) -> list:
    """An iteration's loads, rows' and weights alternating so that the first multiplies'
    operands arrive first, with its integer work: the prefetch cursor (a line per
    iteration without a bound: a prefetch never faults, and the caller clamps the cursor
    to pf_end afterwards), the pointers and the loop count. Integer instructions pair
    with the loads; each pointer's add follows its loads."""
    loads = []
    for j in range(max(len(a_loads), len(w_loads))):
        if j < len(a_loads):
            loads.append(a_loads[j])
        if j < len(w_loads):
            loads.append(w_loads[j])
    ints = ["prfm pldl1keep, [%[pf]]", "add %[pf], %[pf], #64"]
    ints += [f"add %[a{r}], %[a{r}], #{a_bytes}" for r in range(rows)]
    ints += [f"add %[w], %[w], #{w_bytes}", "subs %[n], %[n], #1"]
    group, pending = [], list(ints)
    for ld in loads:
        group.append(ld)
        if pending and not pending[0].startswith(("add %[a", "add %[w]")):
            group.append(pending.pop(0))
    return group + pending


def body(rows: int) -> list:
    w_loads = [f"ldr q{24 + j}, [%[w], #{16 * j}]" for j in range(K_STEPS)]
    a_loads = [f"ldr q{r}, [%[a{r}]]" for r in range(rows)]
    group = load_group(a_loads, w_loads, rows, 16, 16 * K_STEPS)
    macs = []
    for j in range(K_STEPS):
        for r in range(rows):
            macs.append(f"smlal v{acc_reg(rows, r, 0, j)}.4s, v{24 + j}.4h, v{r}.h[{j}]")
            macs.append(f"smlal2 v{acc_reg(rows, r, 1, j)}.4s, v{24 + j}.8h, v{r}.h[{j}]")
    return group + macs


def function(rows: int) -> str:
    s = split_of(rows)
    nacc = 2 * rows * s
    accs = list(range(8, 8 + nacc))
    init = []
    for r in range(rows):
        for col in (0, 1):
            first = acc_reg(rows, r, col, 0)
            init.append(f"ldr q{first}, [%[bias], #{16 * col}]")
            init += [f"movi v{acc_reg(rows, r, col, i)}.4s, #0" for i in range(1, s)]
    loop = [".Lq8_gemm_loop%=:"] + body(rows) + ["b.ne .Lq8_gemm_loop%="]
    store = [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    lines = init + loop + store
    asm = "\n".join(f'        "{ln}\\n\\t"' for ln in lines)
    decl_a = "\n".join(f"    const int16_t *a{r} = a[{r}];" for r in range(rows))
    back_a = "\n".join(f"    a[{r}] = a{r};" for r in range(rows))
    outs = ", ".join([f'[a{r}] "+r"(a{r})' for r in range(rows)] +
                     ['[w] "+r"(wp)', '[n] "+r"(n)', '[pf] "+r"(pfp)'])
    clob = ", ".join([f'"v{i}"' for i in list(range(rows)) + accs + list(range(24, 32))] +
                     ['"cc"', '"memory"'])
    return f"""/* {rows} row{'s' if rows > 1 else ''}: {nacc} accumulators ({s} per output vector). */
static inline __attribute__((always_inline)) void nq8_gemm_kloop_{rows}(
    const int16_t **a, const int16_t **w, uint64_t n, const char **pf, const int32_t *bias,
    int32x4_t *acc) {{
{decl_a}
    const int16_t *wp = *w;
    const char *pfp = *pf;
    __asm__ volatile(
{asm}
        : {outs}
        : [bias] "r"(bias), [acc] "r"(acc)
        : {clob});
{back_a}
    *w = wp;
    *pf = pfp;
}}
"""


DOT_MAX_ROWS = 4


def dot_split(rows: int) -> int:
    return 2 if rows == 1 else 1


def dot_acc(rows: int, r: int, c: int, g: int) -> int:
    s = dot_split(rows)
    return 4 + (r * 4 + c) * s + g % s


def dot_groups(rows: int) -> int:
    return 4 if rows == 1 else 2


def dot_body(rows: int) -> list:
    groups = dot_groups(rows)
    wbase = 32 - 4 * groups
    w_loads = [f"ldr q{wbase + i}, [%[w], #{16 * i}]" for i in range(4 * groups)]
    a_loads = [f"ldr {'q' if groups == 4 else 'd'}{r}, [%[a{r}]]" for r in range(rows)]
    group = load_group(a_loads, w_loads, rows, 4 * groups, 64 * groups)
    dots = [f"sdot v{dot_acc(rows, r, c, g)}.4s, v{wbase + 4 * g + c}.16b, v{r}.4b[{g}]"
            for g in range(groups) for r in range(rows) for c in range(4)]
    return group + dots


def dot_function(rows: int) -> str:
    nacc = 4 * rows * dot_split(rows)
    accs = list(range(4, 4 + nacc))
    load = [f"ldp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    store = [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    loop = [".Lq8_dot_loop%=:"] + dot_body(rows) + ["b.ne .Lq8_dot_loop%="]
    asm = "\n".join(f'        "{ln}\\n\\t"' for ln in load + loop + store)
    decl_a = "\n".join(f"    const int8_t *a{r} = a[{r}];" for r in range(rows))
    back_a = "\n".join(f"    a[{r}] = a{r};" for r in range(rows))
    outs = ", ".join([f'[a{r}] "+r"(a{r})' for r in range(rows)] +
                     ['[w] "+r"(wp)', '[n] "+r"(n)', '[pf] "+r"(pfp)'])
    clob = ", ".join([f'"v{i}"' for i in list(range(rows)) + accs +
                      list(range(32 - 4 * dot_groups(rows), 32))] + ['"cc"', '"memory"'])
    return f"""/* {rows} row{'s' if rows > 1 else ''} x 16 columns: {nacc} accumulators, {4 * dot_groups(rows)} k per iteration. */
static inline __attribute__((always_inline)) void nq8_dot_kloop_{rows}(
    const int8_t **a, const int8_t **w, uint64_t n, const char **pf, int32x4_t *acc) {{
{decl_a}
    const int8_t *wp = *w;
    const char *pfp = *pf;
    __asm__ volatile(
{asm}
        : {outs}
        : [acc] "r"(acc)
        : {clob});
{back_a}
    *w = wp;
    *pf = pfp;
}}
"""


def main() -> None:
    print("""/* Generated by tools/gen_neon_q8_gemm.py: do not edit. The k loops of the AArch64
 * int8 SMLAL GEMM tiles, scheduled for in-order cores; see the generator for the schedule.
 * nq8_gemm_kloop_<rows>(a, w, n, pf, bias, acc) runs n >= 1 iterations of 8 k
 * steps: a[r] are the rows' int16 inputs, *w the panel (8 int16 per k step); the
 * accumulators start at bias[0..3], bias[4..7] (split 0 of columns 0-3, 4-7) or zero and
 * end in acc[(r * 2 + col) * split + i] (NQ8_GEMM_SPLIT_<rows> per output vector); the
 * pointers are advanced past what was consumed, the prefetch cursor *pf by one line per
 * iteration with no bound (the caller clamps it). */
#ifndef MNV3_ARM_NEON_Q8_GEMM_LOOPS_H
#define MNV3_ARM_NEON_Q8_GEMM_LOOPS_H

/* An assembly body is one string, longer than the 4095 characters ISO C asks every
 * compiler to accept; GCC and Clang, the only ones that read GNU inline assembly,
 * take any length. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Woverlength-strings"
#endif
""")
    for rows in range(1, MAX_ROWS + 1):
        print(f"#define NQ8_GEMM_SPLIT_{rows} {split_of(rows)}")
    print()
    for rows in range(1, MAX_ROWS + 1):
        print(function(rows))
    print("""/* nq8_dot_kloop_<rows>(a, w, n, pf, acc) runs n >= 1 iterations of NQ8_DOT_K_<rows>
 * k steps of the SDOT tiles: a[r] are the rows' int8 inputs, *w the panel ([k/4][16][4] int8); the
 * accumulators are read from and written back to acc[(r * 4 + c) * split + g]
 * (NQ8_DOT_SPLIT_<rows> per output vector); pointers and the prefetch cursor as above.
 * Functions that inline them must enable the dot product extension. */""")
    for rows in range(1, DOT_MAX_ROWS + 1):
        print(f"#define NQ8_DOT_SPLIT_{rows} {dot_split(rows)}")
        print(f"#define NQ8_DOT_K_{rows} {4 * dot_groups(rows)}")
    print()
    for rows in range(1, DOT_MAX_ROWS + 1):
        print(dot_function(rows))
    print("""#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif""")


if __name__ == "__main__":
    main()
