#!/usr/bin/env python3
"""Writes csrc/kernels/arm_neon_inorder.h: the k loops of the AArch64 float32 GEMM tiles
scheduled for in-order cores (Cortex-A53, A55), as inline assembly.

An in-order core issues instructions in program order, so the order the compiler happens
to emit is the order that runs, and GCC's generic schedule (loads where the register
allocator freed a register, copies of accumulators under register pressure) stalls such a
core. This generator fixes the order for LLVM's Cortex-A53 and A55 models, which
`make mca` measures:

- The cores write results back in program order: an instruction may not complete before an
  earlier one. With a 10-cycle FMLA (LLVM's A53 model) a 4-cycle load issued after an
  FMLA waits 6 cycles, so every block of 4 k steps issues its loads (and the integer
  work: pointers, prefetch cursor, loop count) as one group ahead of its FMLAs, weights
  and inputs alternating so that the first FMLAs' operands arrive first; the next block's
  group then costs one such wait, not one per load. Loads use an immediate offset from a
  base advanced once per iteration: a post-indexed load costs a second micro-op on these
  cores, and a Q-register ldp occupies the A55's load pipe for several cycles.
- Tiles with few rows split k over several accumulators per output vector (added after
  the loop), so that at least 8 and up to 16 independent chains cover the FMLA latency.

Registers: v0-v7 the rows' inputs (4 k values each), v8-v23 the accumulators, v24-v31 the
weights of 4 k steps (2 vectors each). One iteration is 8 k steps, two blocks; it reads
nothing beyond them, so the last one needs no peeling.

    python3 tools/gen_neon_inorder.py > csrc/kernels/arm_neon_inorder.h
"""
import sys

MAX_ROWS = 8


def split_of(rows: int) -> int:
    """Accumulators per output vector: 2 * rows * split >= 8 chains, at most 16 registers."""
    return {1: 8, 2: 4, 3: 2, 4: 2}.get(rows, 1)


def acc_reg(rows: int, r: int, col: int, step: int) -> int:
    s = split_of(rows)
    return 8 + (r * 2 + col) * s + step % s


def block(rows: int, half: int, last: bool):
    """Block `half` (0 or 1) of one iteration: its load group, then its FMLAs."""
    w_loads = [f"ldr q{24 + i}, [%[w], #{half * 128 + 16 * i}]" for i in range(8)]
    a_loads = [f"ldr q{r}, [%[a{r}], #{16 * half}]" for r in range(rows)]
    loads = []
    for i, wl in enumerate(w_loads):
        loads.append(wl)
        if i < rows:
            loads.append(a_loads[i])
    ints = []
    if half == 0:
        # The prefetch cursor: one line per iteration while it lasts.
        ints += ["prfm pldl1keep, [%[pf]]", "add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]",
                 "csel %[pf], %[tmp], %[pf], ne"]
    if last:
        ints += [f"add %[a{r}], %[a{r}], #32" for r in range(rows)]
        ints += ["add %[w], %[w], #256", "subs %[n], %[n], #1"]
    # Integer instructions pair with the loads (different pipes); each register's add
    # comes after its last load of the iteration.
    group = []
    pending = list(ints)
    for ld in loads:
        group.append(ld)
        if pending and not (pending[0].startswith("add %[a") or pending[0].startswith("add %[w]")):
            group.append(pending.pop(0))
    group += pending
    fmlas = []
    for j in range(4):
        for r in range(rows):
            for col in (0, 1):
                fmlas.append(f"fmla v{acc_reg(rows, r, col, 4 * half + j)}.4s, v{24 + 2 * j + col}.4s, "
                             f"v{r}.s[{j}]")
    return group + fmlas


def function(rows: int) -> str:
    s = split_of(rows)
    nacc = 2 * rows * s
    # The accumulators live in v8.. for the whole statement (an asm takes at most 30
    # operands, 16 read-write vectors would count 32): it starts them at bias[0..1] (split
    # 0) or zero and stores them to acc[] at the end.
    first = {col: 8 + col * s for col in (0, 1)}
    init = [f"ldr q{first[0]}, [%[bias]]", f"ldr q{first[1]}, [%[bias], #16]"]
    for r in range(rows):
        for col in (0, 1):
            for i in range(s):
                reg = 8 + (r * 2 + col) * s + i
                if reg == first[col]:
                    continue
                init.append(f"mov v{reg}.16b, v{first[col]}.16b" if i == 0 else f"movi v{reg}.4s, #0")
    store = [f"stp q{8 + i}, q{9 + i}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    asm = (init + [".Lpw_inorder_loop%=:"] + block(rows, 0, False) + block(rows, 1, True) +
           ["b.ne .Lpw_inorder_loop%="] + store)
    text = "\n".join(f'        "{ins}\\n\\t"' for ins in asm)
    ptrs = "\n".join(f"    const float *a{r} = a[{r}];" for r in range(rows))
    ptrs_back = "\n".join(f"    a[{r}] = a{r};" for r in range(rows))
    outs = ", ".join([f'[a{r}] "+r"(a{r})' for r in range(rows)] +
                     ['[w] "+r"(wp)', '[n] "+r"(n)', '[pf] "+r"(pfp)', '[tmp] "=&r"(tmp)'])
    clobbers = ", ".join(f'"v{v}"' for v in list(range(rows)) + list(range(8, 8 + nacc)) +
                         list(range(24, 32)))
    return f"""
/* {rows} row{'s' if rows > 1 else ''}: {nacc} accumulators ({s} per output vector). */
static inline __attribute__((always_inline)) void pw_inorder_kloop_{rows}(
    const float **a, const float **w, uint64_t n, const char **pf, const char *pf_end,
    const vf *bias, vf *acc) {{
{ptrs}
    const float *wp = *w;
    const char *pfp = *pf;
    uint64_t tmp;
    __asm__ volatile(
{text}
        : {outs}
        : [pf_end] "r"(pf_end), [bias] "r"(bias), [acc] "r"(acc)
        : {clobbers}, "cc", "memory");
{ptrs_back}
    *w = wp;
    *pf = pfp;
}}
"""


def main() -> int:
    out = ["/* Generated by tools/gen_neon_inorder.py: do not edit. The k loops of the AArch64",
           " * float32 GEMM tiles scheduled for in-order cores; see the generator for the",
           " * schedule. pw_inorder_kloop_<rows>(a, w, n, pf, pf_end, bias, acc) runs n >= 1",
           " * iterations of 8 k steps: a[r] are the rows' inputs, *w the panel (8 floats per",
           " * k step); the accumulators start at bias[0], bias[1] (split 0 of columns 0-3, 4-7)",
           " * or zero and end in acc[(r * 2 + col) * split + i] (PW_INORDER_SPLIT_<rows> per output",
           " * vector); the pointers are advanced past what was consumed. */",
           "#ifndef MNV3_ARM_NEON_INORDER_H", "#define MNV3_ARM_NEON_INORDER_H", "",
           "/* An assembly body is one string, longer than the 4095 characters ISO C asks every",
           " * compiler to accept; GCC and Clang, the only ones that read GNU inline assembly,",
           " * take any length. */",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif", ""]
    for rows in range(1, MAX_ROWS + 1):
        out.append(f"#define PW_INORDER_SPLIT_{rows} {split_of(rows)}")
    for rows in range(1, MAX_ROWS + 1):
        out.append(function(rows))
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
