#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_q8_gemm_loops.h: the k loops of the AArch64 int8 GEMM tiles
(arm/neon_q8.c) as inline assembly: SMLAL (1 to 8 rows x 8 columns, rows prepared as
int16 x - in_zp, weights packed [k][8] as int16 w - weight_zp) and SDOT (1 to 4 rows x 16
columns, int8 rows, weights packed [k/4][16][4]).

One iteration is 8 k steps, SMLAL / SMLAL2 by element into the accumulators. The 1-row
tile loads the 8 weight vectors and its 8 inputs as one group ahead of the multiplies.
The order is fixed for the in-order cores (Cortex-A53, A55), for the reasons
tools/generate/neon_f32_gemm.py gives: they write results back in program order, so a load
behind a multiply waits for it, and the grouped loads pay that wait once per iteration;
immediate offsets from bases advanced once per iteration, no post-indexed loads.
Tiles with few rows split k over several accumulators per output vector (added after the
loop), so that at least 8 independent chains cover the multiply latency.

Tiles of PIPELINED_ROWS rows and more take a schedule fitted to the Cortex-A53 model
(llvm-mca 19; SMLAL latency 6, results written back in program order, a 128-bit load does
not issue beside a 128-bit multiply): the weights of the first 4 k steps (64 contiguous
bytes) are one four-register `ld1` issued for the next iteration right after the last
multiply that reads them; its latency (7) exceeds the multiply's, so it waits for nothing
and its load-pipe cycles overlap the multiplies that follow. The rows and the other 4
weight vectors are loaded as one group at the top of the iteration, with the prefetch
paired beside them; the rows use one offset register shared by all (`ldr q, [row, k]`)
whose `adds`, counting up to zero, is the last instruction before the branch, where the
model holds the branch for the multiplies anyway. A prologue loads the first iteration's
ld1 and the last iteration is peeled without it, so nothing is read past the panel.
Modelled fractions of the SMLAL bound, A53 / A55 for 2 to 8 rows: 0.73 / 0.67, 0.79 / 0.74,
0.82 / 0.78, 0.84 / 0.81, 0.86 / 0.83, 0.87 / 0.84, 0.88 / 0.85; A72 (A57 model) and N1
1.00 (grouped schedule before: A53 0.65, 0.73, 0.76, 0.79, 0.81, 0.82, 0.83; A55 0.68,
0.75, 0.78, 0.81, 0.82, 0.84, 0.84). The A55 runs the SDOT tiles; its model costs the
four-register load a few cycles more than the grouped loads, which leaves the 1-row tile,
whose 16 multiplies hide less of it (A55 0.47 against 0.55, A53 0.55 against 0.52), on
the grouped schedule.

SMLAL registers: v0-v7 the rows' inputs (8 k each; by-element operands must lie in
v0-v15), v8-v23 the accumulators, v24-v31 the weights of the 8 k steps.

SDOT tiles have a schedule of their own, fitted to the Cortex-A55 model (llvm-mca 19),
where an SDOT issues every cycle and what else issues beside it depends on latency: the
model writes results back in program order, so an instruction of latency 3 (an add, a load
with an immediate offset, the prefetch) behind an SDOT (latency 4) costs a whole cycle,
while a load with a register offset (`ldr q, [base, offset]`, latency 4) issues in the
SDOT's cycle. So:
- one iteration is 16 k (4 groups of 4): each row is one 16-byte load whose 4 groups the
  SDOTs take by element (.4b[0..3]);
- every load has a base register of its own and one offset register `k` shared by all,
  rows at [base, k], weights at [base, k, lsl #4] (16 weight bytes per row byte), so one
  `adds` per iteration steps every address and, counting up to zero, closes the loop;
- that `adds` comes first in the iteration: the model issues the first instruction after
  the branch beside the first SDOT for free; the prefetch and its cursor step follow the
  last SDOT, in the cycles where the model holds the branch until the SDOTs complete;
- loads run one iteration ahead of their use, each right after an SDOT, the most urgent
  one whose register is free: the weights of groups 1-3 during the groups before, group
  0's weights and the rows for the next iteration during the last groups (two sets of
  weight registers, even and odd groups). The loop runs n - 1 times after a prologue that
  loads the first iteration's rows and group 0; the last iteration is peeled without the
  next iteration's loads, so nothing is read past the rows or the panel;
- some weights are loaded with immediate offsets from a pointer stepped once per iteration
  (dot_imm_loads), as the first loads of the iteration: they do not wait for the offset
  register's step. The A76 column of `make mca` uses LLVM's A57 model, which dispatches 3
  micro-ops a cycle and splits a register-offset q load in two, so the 2-, 3- and 4-row
  tiles keep as many as hold their A57 figures at least where the previous schedule had
  them; the 1-row tile, bound by its loads there anyway, keeps one.
Registers: v0-v3 the rows, v4-v19 the accumulators (4 column vectors per row; 1 row splits
them over odd and even groups, 8 chains for the out-of-order cores' two SDOT pipes),
v24-v31 the weights. Modelled fractions of the SDOT bound, A55 / A76 (A57) / N1: 1 row
0.76 / 0.44 / 0.89, 2 rows 0.74 / 0.73 / 1.00, 3 rows 0.81 / 0.86 / 1.00, 4 rows
0.90 / 0.91 / 1.00 (8 k per iteration before: 0.43, 0.52, 0.60, 0.64 on the A55). The
caller runs the groups left over (k mod 16) outside the loop.

    python3 tools/generate/neon_q8_gemm.py > csrc/kernels/generated/neon_q8_gemm_loops.h
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


def macs(rows: int, steps: range) -> list:
    """The SMLAL / SMLAL2 by element of k steps `steps`, every row for each."""
    out = []
    for j in steps:
        for r in range(rows):
            out.append(f"smlal v{acc_reg(rows, r, 0, j)}.4s, v{24 + j}.4h, v{r}.h[{j}]")
            out.append(f"smlal2 v{acc_reg(rows, r, 1, j)}.4s, v{24 + j}.8h, v{r}.h[{j}]")
    return out


def acc_init(rows: int) -> list:
    """Split 0 of every output vector starts at the bias, the other splits at zero."""
    init = []
    for r in range(rows):
        for col in (0, 1):
            init.append(f"ldr q{acc_reg(rows, r, col, 0)}, [%[bias], #{16 * col}]")
            init += [f"movi v{acc_reg(rows, r, col, i)}.4s, #0" for i in range(1, split_of(rows))]
    return init


def body(rows: int) -> list:
    w_loads = [f"ldr q{24 + j}, [%[w], #{16 * j}]" for j in range(K_STEPS)]
    a_loads = [f"ldr q{r}, [%[a{r}]]" for r in range(rows)]
    group = load_group(a_loads, w_loads, rows, 16, 16 * K_STEPS)
    return group + macs(rows, range(K_STEPS))


def function(rows: int) -> str:
    s = split_of(rows)
    nacc = 2 * rows * s
    accs = list(range(8, 8 + nacc))
    init = acc_init(rows)
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


# Tiles from this many rows up take the pipelined schedule (pipelined_function); the
# 1-row tile keeps the grouped one (see the module docstring).
PIPELINED_ROWS = 2


def pipelined_body(rows: int, last: bool) -> list:
    """One iteration of the pipelined schedule; the last one loads nothing ahead."""
    half = K_STEPS // 2
    loads = [f"ldr q{r}, [%[a{r}], %[k]]" for r in range(rows)]
    loads += [f"ldr q{24 + j}, [%[w], #{16 * j}]" for j in range(half, K_STEPS)]
    ints = ["prfm pldl1keep, [%[pf]]", "add %[pf], %[pf], #64"]
    group = []
    for i, ld in enumerate(loads):
        group.append(ld)
        if i < len(ints):
            group.append(ints[i])
    group.append(f"add %[w], %[w], #{16 * K_STEPS}")
    ahead = [] if last else ["ld1 {v24.8h, v25.8h, v26.8h, v27.8h}, [%[w]]"]
    step = [] if last else [f"adds %[k], %[k], #{2 * K_STEPS}"]
    return group + macs(rows, range(half)) + ahead + macs(rows, range(half, K_STEPS)) + step


def pipelined_function(rows: int) -> str:
    s = split_of(rows)
    nacc = 2 * rows * s
    accs = list(range(8, 8 + nacc))
    init = acc_init(rows)
    init.append("ld1 {v24.8h, v25.8h, v26.8h, v27.8h}, [%[w]]")
    lines = (init + ["cbz %[k], .Lq8_gemm_last%=", ".Lq8_gemm_loop%=:"] +
             pipelined_body(rows, False) + ["b.ne .Lq8_gemm_loop%=", ".Lq8_gemm_last%=:"] +
             pipelined_body(rows, True) +
             [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)])
    asm = "\n".join(f'        "{ln}\\n\\t"' for ln in lines)
    bases = "\n".join(f"    const uintptr_t a{r} = (uintptr_t)a[{r}] + {2 * K_STEPS}u * loops;"
                       for r in range(rows))
    back_a = "\n".join(f"    a[{r}] += {K_STEPS}u * n;" for r in range(rows))
    ins = ", ".join([f'[a{r}] "r"(a{r})' for r in range(rows)] +
                    ['[bias] "r"(bias)', '[acc] "r"(acc)'])
    clob = ", ".join([f'"v{i}"' for i in list(range(rows)) + accs + list(range(24, 32))] +
                     ['"cc"', '"memory"'])
    return f"""/* {rows} rows: {nacc} accumulators ({s} per output vector), pipelined weights. */
static inline __attribute__((always_inline)) void nq8_gemm_kloop_{rows}(
    const int16_t **a, const int16_t **w, uint64_t n, const char **pf, const int32_t *bias,
    int32x4_t *acc) {{
    /* The loop runs n - 1 times and the last iteration is peeled; k counts up to zero, so
     * a row's base is the address it reads in the peeled iteration. */
    const uint64_t loops = n - 1;
{bases}
    uint64_t k = 0u - {2 * K_STEPS}u * loops;
    const int16_t *wp = *w;
    const char *pfp = *pf;
    __asm__ volatile(
{asm}
        : [k] "+r"(k), [w] "+r"(wp), [pf] "+r"(pfp)
        : {ins}
        : {clob});
{back_a}
    *w = wp;
    *pf = pfp;
}}
"""


DOT_MAX_ROWS = 4
DOT_GROUPS = 4      # groups of 4 k per iteration: one 16-byte load per row
DOT_ROW_STEP = 4 * DOT_GROUPS
DOT_W_STEP = 16 * DOT_ROW_STEP  # 16 columns x 4 k per group; 16 times the row step


def dot_split(rows: int) -> int:
    return 2 if rows == 1 else 1


def dot_imm_loads(rows: int) -> int:
    """Weight loads with an immediate offset per iteration (the first ones: the weights of
    group 1); the rest use a register offset. On the A55 model each costs an issue cycle that
    a register offset does not; the A76 (A57) model dispatches three micro-ops a cycle and a
    register-offset q load is two, so the taller tiles keep enough of them to stay at their
    old A76 rate. The 1-row tile keeps one so that its first load does not wait for the
    offset register's step."""
    return {1: 1, 2: 8, 3: 8, 4: 4}[rows]


def dot_acc(rows: int, r: int, c: int, g: int) -> int:
    s = dot_split(rows)
    return 4 + (r * 4 + c) * s + g % s


def dot_wreg(g: int, c: int) -> int:
    """Weights of group g, column vector c: two sets of four registers, even and odd groups."""
    return 24 + 4 * (g % 2) + c


class DotLoad:
    """One load of an iteration: its register, weight vector j (4 * group + column) or row r,
    the index of the multiply after which the register is free (its last reader; -1: free
    from the start), the index of its first reader (counting on into the next iteration) and
    whether it belongs to the next iteration (then the peeled last iteration leaves it out)."""

    def __init__(self, reg: int, j: int, r: int, imm: bool, free_after: int, need: int,
                 nxt: bool):
        self.reg, self.j, self.r, self.imm = reg, j, r, imm
        self.free_after, self.need, self.next = free_after, need, nxt

    def base(self) -> str:
        return f"b{self.j}" if self.r < 0 else f"a{self.r}"

    def text(self) -> str:
        if self.imm:
            return f"ldr q{self.reg}, [%[wi], #{16 * self.j}]"
        if self.r < 0:
            return f"ldr q{self.reg}, [%[{self.base()}], %[k], lsl #4]"
        return f"ldr q{self.reg}, [%[{self.base()}], %[k]]"


def dot_loads(rows: int) -> list:
    """An iteration's loads: the weights of groups 1-3 for this iteration, group 0's weights
    and the rows for the next one (the prologue loads them for the first)."""
    per_group = 4 * rows

    def index(g: int, r: int, c: int) -> int:
        return g * per_group + r * 4 + c

    loads = []
    imm = dot_imm_loads(rows)
    for g in range(1, DOT_GROUPS):
        for c in range(4):
            j = 4 * g + c
            free = index(g - 2, rows - 1, c) if g >= 2 else -1
            loads.append(DotLoad(dot_wreg(g, c), j, -1, j - 4 < imm, free, index(g, 0, c), False))
    whole = DOT_GROUPS * per_group
    for c in range(4):
        loads.append(DotLoad(dot_wreg(0, c), c, -1, False, index(DOT_GROUPS - 2, rows - 1, c),
                             whole + index(0, 0, c), True))
    for r in range(rows):
        loads.append(DotLoad(r, -1, r, False, index(DOT_GROUPS - 1, r, 3),
                             whole + index(0, r, 0), True))
    return loads


def dot_schedule(rows: int) -> list:
    """One iteration: the multiplies, each followed by at most one load: the most urgent one
    whose register is free. Loads that find no slot, the prefetch and its cursor step follow
    the last multiply, where the A55 model holds the branch until the multiplies complete
    anyway. The step of the offset register sets the flags that close the loop. Items are
    strings or DotLoad."""
    pending = dot_loads(rows)
    imm_left = sum(1 for ld in pending if ld.imm)
    step = f"adds %[k], %[k], #{DOT_ROW_STEP}"
    out = [step]

    def emit(ld: DotLoad) -> None:
        nonlocal imm_left
        out.append(ld)
        if ld.imm:
            imm_left -= 1
            if imm_left == 0:
                out.append(f"add %[wi], %[wi], #{DOT_W_STEP}")

    i = 0
    for g in range(DOT_GROUPS):
        for r in range(rows):
            for c in range(4):
                out.append(f"sdot v{dot_acc(rows, r, c, g)}.4s, v{dot_wreg(g, c)}.16b, "
                           f"v{r}.4b[{g}]")
                ready = [ld for ld in pending if ld.free_after <= i]
                if ready:
                    ld = min(ready, key=lambda x: x.need)
                    pending.remove(ld)
                    emit(ld)
                i += 1
    for ld in sorted(pending, key=lambda x: x.need):
        emit(ld)
    return out + ["prfm pldl1keep, [%[pf]]", "add %[pf], %[pf], #64"]


def dot_function(rows: int) -> str:
    nacc = 4 * rows * dot_split(rows)
    accs = list(range(4, 4 + nacc))
    imm = dot_imm_loads(rows)
    load = [f"ldp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    store = [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    body = dot_schedule(rows)
    loads = [x for x in body if isinstance(x, DotLoad)]
    nxt = sorted((ld for ld in loads if ld.next), key=lambda x: x.need)
    first = [ld.text() for ld in nxt]
    loop = [x.text() if isinstance(x, DotLoad) else x for x in body]
    last = [x.text() if isinstance(x, DotLoad) else x for x in body
            if not (isinstance(x, DotLoad) and x.next)]
    lines = (load + first + ["cbz %[k], .Lq8_dot_last%=", ".Lq8_dot_loop%=:"] + loop +
             ["b.ne .Lq8_dot_loop%=", ".Lq8_dot_last%=:"] + last + store)
    asm = "\n".join(f'        "{ln}\\n\\t"' for ln in lines)
    reg_loads = sorted((x for x in loads if not x.imm), key=lambda x: (x.r, x.j))
    bases = []
    for ld in reg_loads:
        if ld.r >= 0:
            bases.append(f"    const uintptr_t a{ld.r} = (uintptr_t)a[{ld.r}] + "
                         f"{DOT_ROW_STEP}u * loops;")
        elif ld.next:
            bases.append(f"    const uintptr_t b{ld.j} = wn + {16 * ld.j}u;" if ld.j else
                         "    const uintptr_t b0 = wn;")
        else:
            bases.append(f"    const uintptr_t b{ld.j} = wn - {DOT_W_STEP - 16 * ld.j}u;")
    back_a = "\n".join(f"    a[{r}] += {DOT_ROW_STEP}u * n;" for r in range(rows))
    outs = ['[k] "+r"(k)', '[pf] "+r"(pfp)'] + (['[wi] "+r"(wi)'] if imm else [])
    ins = [f'[{ld.base()}] "r"({ld.base()})' for ld in reg_loads] + ['[acc] "r"(acc)']
    clob = ", ".join([f'"v{i}"' for i in list(range(rows)) + accs + list(range(24, 32))] +
                     ['"cc"', '"memory"'])
    wi_decl = "    const int8_t *wi = *w;\n" if imm else ""
    head = (f"/* {rows} row{'s' if rows > 1 else ''} x 16 columns: {nacc} accumulators, "
            f"{imm} weight loads of 16 with an immediate offset. */")
    return f"""{head}
static inline __attribute__((always_inline)) void nq8_dot_kloop_{rows}(
    const int8_t **a, const int8_t **w, uint64_t n, const char **pf, int32x4_t *acc) {{
    /* The loop runs n - 1 times and the last iteration is peeled. k counts up to zero and
     * steps first in an iteration, so a base is the address its load reads in the loop's
     * last iteration (k = 0); the peeled one reads a step further. With n = 1 the bases of
     * an iteration's own weights lie before the panel, hence integers, not pointers. */
    const uint64_t loops = n - 1;
    const uintptr_t wn = (uintptr_t)*w + {DOT_W_STEP}u * loops;
{chr(10).join(bases)}
{wi_decl}    uint64_t k = 0u - {DOT_ROW_STEP}u * loops;
    const char *pfp = *pf;
    __asm__ volatile(
{asm}
        : {", ".join(outs)}
        : {", ".join(ins)}
        : {clob});
{back_a}
    *w += {DOT_W_STEP}u * n;
    *pf = pfp;
}}
"""


def main() -> None:
    print("""/* Generated by tools/generate/neon_q8_gemm.py: do not edit. The k loops of the AArch64
 * int8 SMLAL GEMM tiles, scheduled for in-order cores; see the generator for the schedule.
 * nq8_gemm_kloop_<rows>(a, w, n, pf, bias, acc) runs n >= 1 iterations of 8 k
 * steps: a[r] are the rows' int16 inputs, *w the panel (8 int16 per k step); the
 * accumulators start at bias[0..3], bias[4..7] (split 0 of columns 0-3, 4-7) or zero and
 * end in acc[(r * 2 + col) * split + i] (NQ8_GEMM_SPLIT_<rows> per output vector); the
 * pointers are advanced past what was consumed, the prefetch cursor *pf by one line per
 * iteration with no bound (the caller clamps it). */
#ifndef MNV3_NEON_Q8_GEMM_LOOPS_H
#define MNV3_NEON_Q8_GEMM_LOOPS_H

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
        print(pipelined_function(rows) if rows >= PIPELINED_ROWS else function(rows))
    print("""/* nq8_dot_kloop_<rows>(a, w, n, pf, acc) runs n >= 1 iterations of NQ8_DOT_K_<rows>
 * k steps of the SDOT tiles: a[r] are the rows' int8 inputs, *w the panel ([k/4][16][4] int8); the
 * accumulators are read from and written back to acc[(r * 4 + c) * split + g]
 * (NQ8_DOT_SPLIT_<rows> per output vector); pointers and the prefetch cursor as above.
 * Functions that inline them must enable the dot product extension. */""")
    for rows in range(1, DOT_MAX_ROWS + 1):
        print(f"#define NQ8_DOT_SPLIT_{rows} {dot_split(rows)}")
        print(f"#define NQ8_DOT_K_{rows} {DOT_ROW_STEP}")
    print()
    for rows in range(1, DOT_MAX_ROWS + 1):
        print(dot_function(rows))
    print("""#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif""")


if __name__ == "__main__":
    main()
