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

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neon_f32_gemm import (Macro, Seq, Use, asm_block, c_arg, expand, header_macros,  # noqa: E402
                           macros_used)  # noqa: E402

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


def grouped_lines(rows: int) -> list:
    """The grouped schedule's instructions (the 1-row tile)."""
    s = split_of(rows)
    accs = list(range(8, 8 + 2 * rows * s))
    store = [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, len(accs), 2)]
    return acc_init(rows) + [".Lq8_gemm_loop%=:"] + body(rows) + ["b.ne .Lq8_gemm_loop%="] + store


def grouped_code(rows: int) -> list:
    """The grouped schedule as macro uses."""
    return [init_code(rows), ".Lq8_gemm_loop%=:", GROUP[rows], KSTEPS[rows](None),
            "b.ne .Lq8_gemm_loop%=", store_code(rows)]


def function(rows: int) -> str:
    s = split_of(rows)
    nacc = 2 * rows * s
    accs = list(range(8, 8 + nacc))
    code = grouped_code(rows)
    if expand(code) != grouped_lines(rows):
        raise SystemExit(f"neon_q8_gemm: the macros of the {rows}-row tile are not its schedule")
    asm = asm_block(code, SEP)
    decl_a = ", ".join(f"*a{r} = a[{r}]" for r in range(rows))
    back_a = " ".join(f"a[{r}] = a{r};" for r in range(rows))
    outs = ", ".join([f'[a{r}] "+r"(a{r})' for r in range(rows)] +
                     ['[w] "+r"(wp)', '[n] "+r"(n)', '[pf] "+r"(pfp)'])
    clob = ", ".join([f'"v{i}"' for i in list(range(rows)) + accs + list(range(24, 32))] +
                     ['"cc"', '"memory"'])
    return f"""/* {rows} row{'s' if rows > 1 else ''}: {nacc} accumulators ({s} per output vector). */
static inline __attribute__((always_inline)) void nq8_gemm_kloop_{rows}(
    const int16_t **a, const int16_t **w, uint64_t n, const char **pf, const int32_t *bias,
    int32x4_t *acc) {{
    const int16_t {decl_a};
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


def pipelined_lines(rows: int) -> list:
    """The pipelined schedule's instructions."""
    s = split_of(rows)
    accs = list(range(8, 8 + 2 * rows * s))
    init = acc_init(rows)
    init.append("ld1 {v24.8h, v25.8h, v26.8h, v27.8h}, [%[w]]")
    return (init + ["cbz %[k], .Lq8_gemm_last%=", ".Lq8_gemm_loop%=:"] +
            pipelined_body(rows, False) + ["b.ne .Lq8_gemm_loop%=", ".Lq8_gemm_last%=:"] +
            pipelined_body(rows, True) +
            [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, len(accs), 2)])


def pipelined_code(rows: int) -> list:
    """The pipelined schedule as macro uses."""
    group = PIPE_LOADS(Seq(AK_LOAD(r) for r in range(2, rows)))
    return [init_code(rows), LD1_AHEAD, "cbz %[k], .Lq8_gemm_last%=", ".Lq8_gemm_loop%=:",
            group, KSTEPS[rows](LD1_AHEAD), K_STEP, "b.ne .Lq8_gemm_loop%=",
            ".Lq8_gemm_last%=:", group, KSTEPS[rows](None), store_code(rows)]


def pipelined_function(rows: int) -> str:
    s = split_of(rows)
    nacc = 2 * rows * s
    accs = list(range(8, 8 + nacc))
    code = pipelined_code(rows)
    if expand(code) != pipelined_lines(rows):
        raise SystemExit(f"neon_q8_gemm: the macros of the {rows}-row tile are not its schedule")
    asm = asm_block(code, SEP)
    bases = ", ".join(f"a{r} = (uintptr_t)a[{r}] + {2 * K_STEPS}u * loops" for r in range(rows))
    back_a = " ".join(f"a[{r}] += {K_STEPS}u * n;" for r in range(rows))
    ins = ", ".join([f'[a{r}] "r"(a{r})' for r in range(rows)] +
                    ['[bias] "r"(bias)', '[acc] "r"(acc)'])
    clob = ", ".join([f'"v{i}"' for i in list(range(rows)) + accs + list(range(24, 32))] +
                     ['"cc"', '"memory"'])
    return f"""/* {rows} rows: {nacc} accumulators ({s} per output vector), pipelined weights. */
static inline __attribute__((always_inline)) void nq8_gemm_kloop_{rows}(
    const int16_t **a, const int16_t **w, uint64_t n, const char **pf, const int32_t *bias,
    int32x4_t *acc) {{
    const uint64_t loops = n - 1;
    const uintptr_t {bases};
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


class DotMul:
    """One SDOT: accumulator `acc` += weights `w` (16 bytes: 4 columns x 4 k) dotted with
    group g of row r's inputs (4 bytes, by element)."""

    def __init__(self, acc: int, w: int, r: int, g: int):
        self.acc, self.w, self.r, self.g = acc, w, r, g

    def text(self) -> str:
        return f"sdot v{self.acc}.4s, v{self.w}.16b, v{self.r}.4b[{self.g}]"


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
    strings, DotMul or DotLoad."""
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
                out.append(DotMul(dot_acc(rows, r, c, g), dot_wreg(g, c), r, g))
                ready = [ld for ld in pending if ld.free_after <= i]
                if ready:
                    ld = min(ready, key=lambda x: x.need)
                    pending.remove(ld)
                    emit(ld)
                i += 1
    for ld in sorted(pending, key=lambda x: x.need):
        emit(ld)
    return out + ["prfm pldl1keep, [%[pf]]", "add %[pf], %[pf], #64"]


def dot_lines(rows: int) -> list:
    """The SDOT schedule's instructions."""
    nacc = 4 * rows * dot_split(rows)
    accs = list(range(4, 4 + nacc))
    load = [f"ldp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    store = [f"stp q{accs[i]}, q{accs[i + 1]}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    body = dot_schedule(rows)
    loads = [x for x in body if isinstance(x, DotLoad)]
    first = [ld.text() for ld in sorted((ld for ld in loads if ld.next), key=lambda x: x.need)]
    loop = [x if isinstance(x, str) else x.text() for x in body]
    last = [x if isinstance(x, str) else x.text() for x in body
            if not (isinstance(x, DotLoad) and x.next)]
    return (load + first + ["cbz %[k], .Lq8_dot_last%=", ".Lq8_dot_loop%=:"] + loop +
            ["b.ne .Lq8_dot_loop%=", ".Lq8_dot_last%=:"] + last + store)


def dot_code(rows: int) -> list:
    """The SDOT schedule as macro uses."""
    nacc = 4 * rows * dot_split(rows)
    accs = list(range(4, 4 + nacc))
    loads = [x for x in dot_schedule(rows) if isinstance(x, DotLoad)]
    first = Seq(dot_load(ld) for ld in sorted((ld for ld in loads if ld.next), key=lambda x: x.need))
    return [Seq(LDP(accs[i], accs[i + 1], 16 * i) for i in range(0, nacc, 2)), first,
            "cbz %[k], .Lq8_dot_last%=", ".Lq8_dot_loop%=:", DOT_ITER[rows](KEEP),
            "b.ne .Lq8_dot_loop%=", ".Lq8_dot_last%=:", DOT_ITER[rows](DROP),
            Seq(STP(accs[i], accs[i + 1], 16 * i) for i in range(0, nacc, 2))]


def dot_function(rows: int) -> str:
    nacc = 4 * rows * dot_split(rows)
    accs = list(range(4, 4 + nacc))
    imm = dot_imm_loads(rows)
    code = dot_code(rows)
    if expand(code) != dot_lines(rows):
        raise SystemExit(f"neon_q8_gemm: the macros of the {rows}-row SDOT tile are not its schedule")
    asm = asm_block(code, SEP)
    loads = [x for x in dot_schedule(rows) if isinstance(x, DotLoad)]
    reg_loads = sorted((x for x in loads if not x.imm), key=lambda x: (x.r, x.j))
    ahead, own, row_bases = [], [], []
    for ld in reg_loads:
        if ld.r >= 0:
            row_bases.append(f"a{ld.r} = (uintptr_t)a[{ld.r}] + {DOT_ROW_STEP}u * loops")
        elif ld.next:
            ahead.append(f"b{ld.j} = wn + {16 * ld.j}u" if ld.j else "b0 = wn")
        else:
            own.append(f"b{ld.j} = wn - {DOT_W_STEP - 16 * ld.j}u")
    # The bases in the order of the loads' operands: the next iteration's group 0, this
    # iteration's weights, the rows.
    assert [b.split(" ")[0] for b in ahead + own + row_bases] == [ld.base() for ld in reg_loads]
    bases = "\n".join(f"    const uintptr_t {', '.join(part)};"
                        for part in (ahead, own, row_bases) if part)
    back_a = " ".join(f"a[{r}] += {DOT_ROW_STEP}u * n;" for r in range(rows))
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
    const uint64_t loops = n - 1;
    const uintptr_t wn = (uintptr_t)*w + {DOT_W_STEP}u * loops;
{bases}
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


# ---- The header's macros (neon_f32_gemm.Macro) ------------------------------------------
SEP = "\\n\\t"

W_LOAD = Macro("Q8G_W", ["V", "OFF"], lambda v, off: [f"ldr q{v}, [%[w], #{off}]"],
               "Q8G_W(V, OFF), Q8G_A(R): the weights of a k step into vV from byte OFF of the "
               "iteration's panel; row R's 8 inputs into vR (the grouped schedule).")
A_LOAD = Macro("Q8G_A", ["R"], lambda r: [f"ldr q{r}, [%[a{r}]]"], None)
AK_LOAD = Macro("Q8G_AK", ["R"], lambda r: [f"ldr q{r}, [%[a{r}], %[k]]"],
                "Q8G_AK(R): row R's inputs into vR from its base at the shared offset k (the "
                "pipelined and the SDOT schedules).")
MAC = Macro("Q8G_MAC", ["A0", "A1", "W", "X", "J"],
            lambda a0, a1, w, x, j: [f"smlal v{a0}.4s, v{w}.4h, v{x}.h[{j}]",
                                     f"smlal2 v{a1}.4s, v{w}.8h, v{x}.h[{j}]"],
            "Q8G_MAC(A0, A1, W, X, J): a row's SMLAL, SMLAL2 of k step J: output vectors 0-3, "
            "4-7 in vA0, vA1 += the step's weights vW (low, high half) times lane J of the "
            "row's inputs vX.")


def _step_body(rows: int):
    def body(j, w, *accs):
        r = rows - 1
        return ([STEP[r](j, w, *accs[:-2])] if r else []) + [MAC(accs[-2], accs[-1], w, r, j)]
    return body


STEP = {}
for _rows in range(1, MAX_ROWS + 1):
    STEP[_rows] = Macro(
        f"Q8G_STEP_{_rows}", ["J", "W"] + [f"{c}{r}" for r in range(_rows) for c in "AB"],
        _step_body(_rows),
        None if _rows > 1 else
        "Q8G_STEP_<rows>(J, W, A0, B0, ..., A<rows-1>, B<rows-1>): k step J of a tile (macs): "
        "Q8G_MAC of every row r into vA<r>, vB<r> (each macro adds a row to the one before).")


def _ksteps_body(rows: int):
    def step(j: int):
        accs = [acc_reg(rows, r, col, j) for r in range(rows) for col in (0, 1)]
        return STEP[rows](j, 24 + j, *accs)
    half = K_STEPS // 2
    return lambda mid: [step(j) for j in range(half)] + [mid] + [step(j) for j in range(half, K_STEPS)]


KSTEPS = {}
for _rows in range(1, MAX_ROWS + 1):
    KSTEPS[_rows] = Macro(
        f"Q8G_KSTEPS_{_rows}", ["MID"], _ksteps_body(_rows),
        None if _rows > 1 else
        "Q8G_KSTEPS_<rows>(MID): the iteration's 8 k steps of a tile, into split j % split "
        "of each output vector at step j; MID (the pipelined schedule's load ahead, or empty) "
        "between steps 3 and 4.")

LD1_AHEAD = Macro("Q8G_LD1_AHEAD", None, lambda: ["ld1 {v24.8h, v25.8h, v26.8h, v27.8h}, [%[w]]"],
                  "Q8G_LD1_AHEAD: the weights of k steps 0-3 of the next iteration (the "
                  "pipelined schedule), once the last multiply that reads them has issued.")
K_STEP = Macro("Q8G_K_STEP", None, lambda: [f"adds %[k], %[k], #{2 * K_STEPS}"],
               "Q8G_K_STEP: the rows' offset steps, counting up to zero (the loop's flags).")
PIPE_LOADS = Macro(
    "Q8G_PIPE_LOADS", ["ROWS"],
    lambda rows: [AK_LOAD(0), "prfm pldl1keep, [%[pf]]", AK_LOAD(1), "add %[pf], %[pf], #64",
                  rows] + [W_LOAD(24 + j, 16 * j) for j in range(K_STEPS // 2, K_STEPS)] +
                 [f"add %[w], %[w], #{16 * K_STEPS}"],
    "Q8G_PIPE_LOADS(ROWS): the load group of a pipelined iteration (pipelined_body): rows 0 "
    "and 1 with the prefetch, ROWS (the other rows' Q8G_AK), the weights of k steps 4-7, the "
    "panel pointer's step.")

GROUP = {
    rows: Macro(f"Q8G_GROUP_{rows}", None,
                lambda rows=rows: load_group([A_LOAD(r) for r in range(rows)],
                                             [W_LOAD(24 + j, 16 * j) for j in range(K_STEPS)],
                                             rows, 16, 16 * K_STEPS),
                f"Q8G_GROUP_{rows}: the load group of the {rows}-row tile's iteration "
                "(load_group): its inputs and the 8 weight vectors, the prefetch paired with "
                "the first loads, then the pointers' steps and the count.")
    for rows in range(1, PIPELINED_ROWS)}

BIAS = Macro("Q8G_BIAS", ["A", "OFF"], lambda a, off: [f"ldr q{a}, [%[bias], #{off}]"],
             "Q8G_BIAS(A, OFF), Q8G_ZERO(A): an output vector's split 0 starts at the bias at "
             "byte OFF, the other splits at zero.")
ZERO = Macro("Q8G_ZERO", ["A"], lambda a: [f"movi v{a}.4s, #0"], None)
STP = Macro("Q8G_STP", ["A0", "A1", "OFF"], lambda a0, a1, off: [f"stp q{a0}, q{a1}, [%[acc], #{off}]"],
            "Q8G_STP(A0, A1, OFF): two accumulators to acc at byte offset OFF.")
LDP = Macro("Q8G_LDP", ["A0", "A1", "OFF"], lambda a0, a1, off: [f"ldp q{a0}, q{a1}, [%[acc], #{off}]"],
            "Q8G_LDP(A0, A1, OFF): two accumulators from acc at byte offset OFF.")


def init_code(rows: int) -> Seq:
    """acc_init as macro uses."""
    return Seq(x for r in range(rows) for col in (0, 1)
               for x in [BIAS(acc_reg(rows, r, col, 0), 16 * col)] +
               [ZERO(acc_reg(rows, r, col, i)) for i in range(1, split_of(rows))])


def store_code(rows: int) -> Seq:
    accs = list(range(8, 8 + 2 * rows * split_of(rows)))
    return Seq(STP(accs[i], accs[i + 1], 16 * i) for i in range(0, len(accs), 2))


SDOT_ROW = Macro(
    "Q8D_ROW", ["A0", "A1", "A2", "A3", "W0", "W1", "W2", "W3", "X", "G", "L0", "L1", "L2", "L3"],
    lambda a0, a1, a2, a3, w0, w1, w2, w3, x, g, *ls: [
        y for a, w, ld in zip((a0, a1, a2, a3), (w0, w1, w2, w3), ls)
        for y in (f"sdot v{a}.4s, v{w}.16b, v{x}.4b[{g}]", ld)],
    "Q8D_ROW(A0, ..., A3, W0, ..., W3, X, G, L0, ..., L3): the 4 SDOTs of group G of row "
    "inputs vX (DotMul): column vector c into vA<c> with weights vW<c>, each followed by L<c> "
    "(the load the schedule places there, or empty).")


def _row_half(parity: int):
    return lambda a0, a1, a2, a3, x, g, *ls: [
        SDOT_ROW(a0, a1, a2, a3, *[dot_wreg(parity, c) for c in range(4)], x, g, *ls)]


SDOT_LO = Macro("Q8D_ROW_LO", ["A0", "A1", "A2", "A3", "X", "G", "L0", "L1", "L2", "L3"],
                _row_half(0),
                "Q8D_ROW_LO(A0, A1, A2, A3, X, G, L0, L1, L2, L3), Q8D_ROW_HI(...): Q8D_ROW of an "
                "even, odd group, whose weights are v24-v27, v28-v31 (dot_wreg).")
SDOT_HI = Macro("Q8D_ROW_HI", ["A0", "A1", "A2", "A3", "X", "G", "L0", "L1", "L2", "L3"],
                _row_half(1), None)
WI_LOAD = Macro("Q8D_WI", ["V", "OFF"], lambda v, off: [f"ldr q{v}, [%[wi], #{off}]"],
                "Q8D_WI(V, OFF), Q8D_WK(V, B): weight vector vV from the iteration's pointer at "
                "byte OFF; from base %[B] at 16 times the offset k (DotLoad).")
WK_LOAD = Macro("Q8D_WK", ["V", "B"], lambda v, b: [f"ldr q{v}, [%[{b}], %[k], lsl #4]"], None)
WI_STEP = Macro("Q8D_WI_STEP", None, lambda: [f"add %[wi], %[wi], #{DOT_W_STEP}"],
                "Q8D_WI_STEP: the iteration's weight pointer steps, after its last load.")
KEEP = Macro("Q8D_KEEP", ["L"], lambda ld: [ld],
             "Q8D_KEEP(L), Q8D_DROP(L): a load for the next iteration, kept in the loop and left "
             "out of the peeled last iteration.")
DROP = Macro("Q8D_DROP", ["L"], lambda ld: [], None, drops=("L",))


def dot_load(ld: DotLoad) -> Use:
    """A DotLoad as a macro use."""
    if ld.imm:
        return WI_LOAD(ld.reg, 16 * ld.j)
    return AK_LOAD(ld.r) if ld.r >= 0 else WK_LOAD(ld.reg, ld.base())


PREFETCH = Macro("Q8D_PREFETCH", None,
                 lambda: ["prfm pldl1keep, [%[pf]]", "add %[pf], %[pf], #64"],
                 "Q8D_PREFETCH: the prefetch and its cursor's step, after the last multiply.")


def _dot_row(rows: int, r: int, g: int, slots) -> Use:
    """Row r's multiplies of group g with the items after them (Q8D_ROW_LO / _HI)."""
    accs = [dot_acc(rows, r, c, g) for c in range(4)]
    return (SDOT_HI if g % 2 else SDOT_LO)(*accs, r, g, *slots)


def _plain_body(n: int):
    return lambda row, g: ([PLAIN[n - 1](row, g)] if n > 1 else []) + [
        row(*[4 + 4 * (n - 1) + c for c in range(4)], n - 1, g, None, None, None, None)]


# Q8D_PLAIN_<n>: the first n rows' multiplies of a group with no loads among them (split 1).
PLAIN = {}
for _n in range(1, DOT_MAX_ROWS):
    PLAIN[_n] = Macro(f"Q8D_PLAIN_{_n}", ["ROW", "G"], _plain_body(_n),
                      None if _n > 1 else
                      "Q8D_PLAIN_<n>(ROW, G): the multiplies of group G of rows 0 to n - 1 of a "
                      "tile of one accumulator per column vector, no load among them (ROW "
                      "Q8D_ROW_LO or Q8D_ROW_HI; each macro adds a row to the one before).")


def _last_body(n: int):
    return lambda nxt: ([LAST[n - 1](nxt)] if n > 1 else []) + [
        SDOT_HI(*[4 + 4 * (n - 1) + c for c in range(4)], n - 1, DOT_GROUPS - 1,
                None, None, None, nxt(AK_LOAD(n - 1)))]


# Q8D_LAST_<rows>: group 3 of a tile of one accumulator per column vector.
LAST = {}
for _n in range(1, DOT_MAX_ROWS + 1):
    LAST[_n] = Macro(f"Q8D_LAST_{_n}", ["NEXT"], _last_body(_n),
                     None if _n > 1 else
                     "Q8D_LAST_<rows>(NEXT): the multiplies of the last group (3) of a tile of "
                     "one accumulator per column vector, the next iteration's inputs of each row "
                     "loaded through NEXT after its last one (each macro adds a row to the one "
                     "before).")


def _dot_iter_body(rows: int):
    def body(nxt):
        items = dot_schedule(rows)
        # each multiply with what follows it: at most a load, and the pointer step after the
        # last immediate-offset load; then what follows the last multiply
        slots, tail, i = {}, [], 0
        for x in items[1:]:
            if isinstance(x, DotMul):
                key = (x.g, x.r, x.w - dot_wreg(x.g, 0))
                slots[key] = []
            elif isinstance(x, DotLoad) and not slots[key]:
                slots[key].append(nxt(dot_load(x)) if x.next else dot_load(x))
            elif x == WI_STEP.body()[0] and len(slots[key]) == 1:
                slots[key].append(WI_STEP)
            elif isinstance(x, DotLoad):
                tail.append(nxt(dot_load(x)) if x.next else dot_load(x))
            else:
                tail.append(x)
        assert items[0] == K_STEP_DOT.body()[0] and tail[-2:] == PREFETCH.body()
        tail = tail[:-2]

        def slot(g, r, c):
            s = slots[(g, r, c)]
            return Seq(s) if len(s) > 1 else (s[0] if s else None)

        out = [K_STEP_DOT]
        for g in range(DOT_GROUPS):
            plain = 0
            while (plain < rows - 1 and dot_split(rows) == 1 and
                   all(slot(g, plain, c) is None for c in range(4))):
                plain += 1
            if plain:
                out.append(PLAIN[plain](SDOT_HI if g % 2 else SDOT_LO, g))
            last = [slot(g, r, c) for r in range(rows) for c in range(4)]
            if (g == DOT_GROUPS - 1 and plain == 0 and dot_split(rows) == 1 and
                    c_arg(last) == c_arg([[None, None, None, nxt(AK_LOAD(r))]
                                          for r in range(rows)])):
                out.append(LAST[rows](nxt))
                continue
            out += [_dot_row(rows, r, g, [slot(g, r, c) for c in range(4)])
                    for r in range(plain, rows)]
        return out + tail + [PREFETCH]
    return body


K_STEP_DOT = Macro("Q8D_K_STEP", None, lambda: [f"adds %[k], %[k], #{DOT_ROW_STEP}"],
                   "Q8D_K_STEP: the offset register steps, first in an iteration (its flags "
                   "close the loop).")

DOT_ITER = {}
for _rows in range(1, DOT_MAX_ROWS + 1):
    DOT_ITER[_rows] = Macro(
        f"Q8D_ITER_{_rows}", ["NEXT"], _dot_iter_body(_rows),
        None if _rows > 1 else
        "Q8D_ITER_<rows>(NEXT): one iteration of an SDOT tile (dot_schedule): each multiply "
        "with the load placed after it, the next iteration's loads through NEXT (Q8D_KEEP in "
        "the loop, Q8D_DROP in the peeled last iteration).")


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
    smlal = [pipelined_code(rows) if rows >= PIPELINED_ROWS else grouped_code(rows)
             for rows in range(1, MAX_ROWS + 1)]
    print(header_macros(smlal, SEP))
    print()
    for rows in range(1, MAX_ROWS + 1):
        if rows == PIPELINED_ROWS:
            print("""/* The pipelined tiles (2 rows and more): the loop runs n - 1 times and the last
 * iteration is peeled; k counts up to zero, so a row's base is the address it reads in the
 * peeled iteration. */""")
        print(pipelined_function(rows) if rows >= PIPELINED_ROWS else function(rows))
    print("""/* nq8_dot_kloop_<rows>(a, w, n, pf, acc) runs n >= 1 iterations of NQ8_DOT_K_<rows>
 * k steps of the SDOT tiles: a[r] are the rows' int8 inputs, *w the panel ([k/4][16][4] int8); the
 * accumulators are read from and written back to acc[(r * 4 + c) * split + g]
 * (NQ8_DOT_SPLIT_<rows> per output vector); pointers and the prefetch cursor as above.
 * Functions that inline them must enable the dot product extension. The loop runs n - 1
 * times and the last iteration is peeled. k counts up to zero and steps first in an
 * iteration, so a base is the address its load reads in the loop's last iteration (k = 0);
 * the peeled one reads a step further. With n = 1 the bases of an iteration's own weights
 * lie before the panel, hence integers, not pointers. */""")
    for rows in range(1, DOT_MAX_ROWS + 1):
        print(f"#define NQ8_DOT_SPLIT_{rows} {dot_split(rows)}")
        print(f"#define NQ8_DOT_K_{rows} {DOT_ROW_STEP}")
    print()
    print(header_macros([dot_code(rows) for rows in range(1, DOT_MAX_ROWS + 1)], SEP,
                        known=macros_used(smlal)))
    print()
    for rows in range(1, DOT_MAX_ROWS + 1):
        print(dot_function(rows))
    print("""#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif""")


if __name__ == "__main__":
    main()
