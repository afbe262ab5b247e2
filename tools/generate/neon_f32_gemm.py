#!/usr/bin/env python3
"""Writes csrc/kernels/generated/neon_f32_gemm_loops.h: the k loops of the AArch64 float32 GEMM tiles,
scheduled for in-order cores (Cortex-A53, A55), as inline assembly. Every AArch64 core runs
them: on LLVM's out-of-order models (Neoverse N1, the A57 model of the A72/A76) they
measure at least as high as the compiler's own lane loop at every tile height. The
float16-weight and relaxed-precision sets run them too, on widened weights.

An in-order core issues instructions in program order, so the order the compiler happens
to emit is the order that runs, and GCC's generic schedule (loads where the register
allocator freed a register, copies of accumulators under register pressure) stalls such a
core. This generator fixes the order for LLVM's Cortex-A53 and A55 models, which
`make mca` measures:

- The cores write results back in program order: an instruction may not complete before an
  earlier one. With a 10-cycle FMLA (LLVM's A53 model) a 4-cycle load issued after an
  FMLA waits ~5 cycles, a 1-cycle branch ~9, a four-register LD1 (7 cycles) only ~2.
- So a block's 32 weights (4 k steps, 128 contiguous bytes of the panel) are two
  four-register LD1s placed among the FMLAs: v28-v31 (steps 2-3) once step 0's FMLAs
  have issued, the next block's v24-v27 (steps 0-1) once step 1's, their last readers,
  have. Each waits ~2 cycles and its load-pipe cycles overlap the FMLAs that follow,
  where 8 one-register loads grouped ahead of the FMLAs cost 8 issue cycles. LD1 has no
  immediate offset and its post-indexed form costs a second micro-op (a base write-back
  that waits behind the FMLAs), so the two loads use pointers of their own (wa, wb),
  advanced by adds in the integer work.
- The rows' inputs (one 128-bit load per row and block) and the integer work (pointers,
  prefetch cursor, loop count) form one group per block ahead of its FMLAs, integer
  instructions paired with loads and placed three cycles after what they depend on; the
  group then costs one write-back wait, not one per load. Row r is addressed from one
  base per block plus its byte offset from row 0 (one add per block moves all rows).
  For 7-8 rows the loop is rotated so that its body ends with the next iteration's
  block-0 inputs: the backward branch then follows loads (~3 cycles) instead of FMLAs
  (~9). Tiles of 2-6 rows have free registers (v<rows>..v7, unused accumulators) for
  both blocks' inputs: one group at the top of the body loads them all and does all the
  integer work, one write-back wait per iteration (the branch's) instead of two groups'
  and the branch's; each weight load then has a pointer of its own, as no integer work
  sits between the blocks.
  Placing the v24-v27 load at the head of a group instead of among the FMLAs gains a
  little on the A53 model and loses much on the A55's (its LD1 of four registers holds
  the load pipe 8 cycles).
- The loop never reads beyond the steps it consumes: on its last iteration the loads that
  look one block ahead (v24-v27, and in the rotated loop the inputs) read their current
  block again (a csel on the loop count keeps their pointer), so the last iteration needs
  no peeling.
- No tile splits k over several accumulators: every tile height adds a pixel's products
  in k order, so its result depends neither on the tile it falls in nor on where a
  thread's range of pixels starts (results are bit-identical at any thread count). Tiles
  of 1-3 rows are then latency-bound on the in-order models (2R chains of a 10-cycle FMLA
  on the A53); they run only for layers or ranges of so few pixels.

Registers: v0-v7 the rows' inputs (4 k values each; block 1's of 2-6 rows also in the
unused accumulators), v8-v23 the accumulators, v24-v31 the weights of 4 k steps (2
vectors each). One iteration is 8 k steps, two blocks.

LLVM 19, fraction of the FMLA bound per tile height 1-8 on the A53 model: 0.18 0.35 0.51
0.67 0.74 0.76 0.75 0.77 (grouped one-register loads: 0.16 0.30 0.43 0.54 0.65 0.67 0.70
0.71); on the A55 model, which issues two FMLAs a cycle where the bound counts one, 0.36
0.64 0.91 1.14 1.25 1.33 1.35 1.42 (0.35 0.63 0.87 1.07 1.14 1.18 1.23 1.25).

    python3 tools/generate/neon_f32_gemm.py > csrc/kernels/generated/neon_f32_gemm_loops.h
"""
import sys

MAX_ROWS = 8


def acc_reg(r: int, col: int) -> int:
    """Row r's accumulator of output vector col: one per vector (see the module's docstring:
    a split would make a pixel's sum depend on its tile's height)."""
    return 8 + r * 2 + col


def prefetch_ints():
    """The prefetch cursor: one line per iteration while it lasts."""
    return ["prfm pldl1keep, [%[pf]]", "add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]",
            "csel %[pf], %[tmp], %[pf], ne"]


def fmla_step(rows: int, j: int, inputs=None):
    """The FMLAs of k step j of a block: every row (its inputs in v<inputs[r]>, by default
    v<r>) times the step's two weight vectors."""
    inputs = inputs or list(range(rows))
    return [f"fmla v{acc_reg(r, col)}.4s, v{24 + 2 * j + col}.4s, v{inputs[r]}.s[{j}]"
            for r in range(rows) for col in (0, 1)]


# Tiles of up to 6 rows have registers for both blocks' inputs (see input_regs) and take
# one load group per iteration; a 1-row tile, latency-bound either way, measures a little
# better with two.
ONE_GROUP_ROWS = range(2, 7)


def input_regs(rows: int, half: int):
    """Where each row's inputs of block `half` live: v<r> for block 0; for block 1 of a tile
    of ONE_GROUP_ROWS rows, the registers that neither block 0's inputs nor the
    accumulators use (v<rows>..v7, then the unused accumulators), else v<r> again."""
    if half == 0 or rows not in ONE_GROUP_ROWS:
        return list(range(rows))
    free = list(range(rows, 8)) + list(range(8 + 2 * rows, 24))
    return free[:rows]


def input_load(r: int, half: int, reg: int = -1) -> str:
    """Row r's 4 inputs of block `half` into v<reg> (by default v<r>), addressed from the
    block's base (row 0) and the row's byte offset, so that one add per block moves all
    rows."""
    reg = r if reg < 0 else reg
    base = "%[a16]" if half else "%[a]"
    return f"ldr q{reg}, [{base}]" if r == 0 else f"ldr q{reg}, [{base}, %[o{r}]]"


def pair(loads, ints):
    """Integer instructions pair with the loads (different pipes), one after each load, in
    the order given: the callers order them so that each issues about three cycles after
    what it depends on (None leaves a load unpaired)."""
    out = []
    ints = list(ints)
    for ld in loads:
        out.append(ld)
        if ints:
            out.append(ints.pop(0))
    return [ins for ins in out + ints if ins]


def weight_load(first: int, pointer: str) -> str:
    """Four weight vectors v<first>.. (two k steps) from 64 contiguous bytes of the panel."""
    regs = ", ".join(f"v{first + i}.4s" for i in range(4))
    return f"ld1 {{{regs}}}, [%[{pointer}]]"


def block_fmlas(rows: int, wb: str = "wb", wa: str = "wa", inputs=None):
    """The FMLAs of one block of 4 k steps with the two weight loads among them: v28-v31
    (steps 2-3) once step 0 has issued, the next block's v24-v27 (steps 0-1) once step 1,
    their last reader, has."""
    return (fmla_step(rows, 0, inputs) + [weight_load(28, wb)] + fmla_step(rows, 1, inputs) +
            [weight_load(24, wa)] + fmla_step(rows, 2, inputs) + fmla_step(rows, 3, inputs))


def loop_body_one_group(rows: int):
    """Tiles of ONE_GROUP_ROWS rows: both blocks' inputs and all the integer work
    in one group at the top of the body (one write-back wait per iteration instead of
    two). The pointers advance ahead of their uses (the prologue starts them one
    iteration back); each weight load has its own pointer, as no integer work sits between
    the blocks. On the last iteration the load of the next block's v24-v27 reads the
    current block's again (wa1 takes wa0's value)."""
    loads = ([prefetch_ints()[0]] + [input_load(r, 0) for r in range(rows)] +
             [input_load(r, 1, reg) for r, reg in enumerate(input_regs(rows, 1))])
    ints = ["add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]", "add %[wa0], %[wa0], #256",
            "add %[wb0], %[wb0], #256", "csel %[pf], %[tmp], %[pf], ne", "subs %[n], %[n], #1",
            "add %[tmp2], %[wa1], #256", "add %[wb1], %[wb1], #256", None,
            "csel %[wa1], %[tmp2], %[wa0], ne"]
    group = pair(loads, ints) + ["add %[a], %[a], #32", "add %[a16], %[a16], #32"]
    return ([".Lf32_gemm_loop%=:"] + group +
            block_fmlas(rows, "wb0", "wa0", input_regs(rows, 0)) +
            block_fmlas(rows, "wb1", "wa1", input_regs(rows, 1)) + ["b.ne .Lf32_gemm_loop%="])


def loop_body(rows: int):
    """One iteration of the k loop: 8 k steps, two blocks of 4."""
    if rows in ONE_GROUP_ROWS:
        return loop_body_one_group(rows)
    # Block 1's group. The last iteration loads the next block's v24-v27 and inputs again
    # from where they were, not from beyond the steps the loop consumes.
    group1 = pair([prefetch_ints()[0]] + [input_load(r, 1) for r in range(rows)],
                  ["add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]",
                   "add %[tmp2], %[wa], #128", "add %[wb], %[wb], #128",
                   "csel %[pf], %[tmp], %[pf], ne", "subs %[n], %[n], #1",
                   "add %[tmp], %[a], #32", None,
                   "csel %[wa], %[tmp2], %[wa], ne", "csel %[a], %[tmp], %[a], ne"])
    # The next iteration's block-0 inputs end the body, so that the branch follows loads
    # (it waits ~3 cycles for them to complete, ~9 after an FMLA).
    group0 = pair([input_load(r, 0) for r in range(rows)],
                  ["add %[wb], %[wb], #128", "add %[wa], %[wa], #128",
                   "add %[a16], %[a16], #32"])
    return ([".Lf32_gemm_loop%=:"] + block_fmlas(rows) + group1 +
            block_fmlas(rows) + group0 + ["b.ne .Lf32_gemm_loop%="])


def prologue(rows: int):
    """Float32 weights: what the loop expects at its top: the first block's v24-v27 and the
    pointers; with two groups an iteration (the body ends with the next iteration's
    block-0 inputs), those inputs; with one, pointers one iteration back."""
    if rows in ONE_GROUP_ROWS:
        return [weight_load(24, "w"), "sub %[wa0], %[w], #128", "mov %[wa1], %[w]",
                "sub %[wb0], %[w], #192", "sub %[wb1], %[w], #64", "add %[a16], %[a], #16"]
    return ([weight_load(24, "w"), "add %[wa], %[w], #128", "add %[wb], %[w], #64",
             "add %[a16], %[a], #16"] + [input_load(r, 0) for r in range(rows)])


def function(rows: int) -> str:
    nacc = 2 * rows
    # The accumulators live in v8.. for the whole statement (an asm takes at most 30
    # operands, 16 read-write vectors would count 32): it starts them at bias[0..1] and
    # stores them to acc[] at the end.
    init = [f"ldr q{acc_reg(0, 0)}, [%[bias]]", f"ldr q{acc_reg(0, 1)}, [%[bias], #16]"]
    init += [f"mov v{acc_reg(r, col)}.16b, v{acc_reg(0, col)}.16b"
             for r in range(1, rows) for col in (0, 1)]
    store = [f"stp q{8 + i}, q{9 + i}, [%[acc], #{16 * i}]" for i in range(0, nacc, 2)]
    loop = prologue(rows) + loop_body(rows)
    asm = init + loop + store
    text = "\n".join(f'        "{ins}\\n\\t"' for ins in asm)
    vregs = sorted(set(list(range(rows)) + list(range(8, 8 + nacc)) + list(range(24, 32)) +
                       input_regs(rows, 1)))
    clobbers = ", ".join(f'"v{v}"' for v in vregs)
    # Row r is addressed as row 0 plus its byte offset (the rows of one activation matrix).
    offsets = "\n".join(f"    const uint64_t o{r} = (uint64_t)((const char *)a[{r}] - (const char *)a0);"
                         for r in range(1, rows))
    advance = "\n".join(f"    a[{r}] += 8 * n;" for r in range(rows))
    wptrs = ["wa0", "wa1", "wb0", "wb1"] if rows in ONE_GROUP_ROWS else ["wa", "wb"]
    outs = ", ".join(['[a] "+r"(ap)', '[a16] "=&r"(a16)'] +
                     [f'[{p}] "=&r"({p})' for p in wptrs] +
                     ['[n] "+r"(left)', '[pf] "+r"(pfp)', '[tmp] "=&r"(tmp)', '[tmp2] "=&r"(tmp2)'])
    ins = ", ".join([f'[o{r}] "r"(o{r})' for r in range(1, rows)] +
                    ['[w] "r"(*w)', '[pf_end] "r"(pf_end)', '[bias] "r"(bias)', '[acc] "r"(acc)'])
    return f"""
/* {rows} row{'s' if rows > 1 else ''}: {nacc} accumulators. */
static inline __attribute__((always_inline)) void f32_gemm_kloop_{rows}(
    const float **a, const float **w, uint64_t n, const char **pf, const char *pf_end,
    const vf *bias, vf *acc) {{
    const float *a0 = a[0], *ap = a0, *a16, {", ".join("*" + p for p in wptrs)};
{offsets}
    const char *pfp = *pf;
    uint64_t left = n, tmp, tmp2;
    __asm__ volatile(
{text}
        : {outs}
        : {ins}
        : {clobbers}, "cc", "memory");
{advance}
    *w += 64 * n;
    *pf = pfp;
}}
"""


def main() -> int:
    if sys.argv[1:]:
        sys.stderr.write("usage: generate/neon_f32_gemm.py\n")
        return 2
    head = [" * float32 GEMM tiles, scheduled for in-order cores and run by every core; see the",
            " * generator for the schedule. f32_gemm_kloop_<rows>(a, w, n, pf, pf_end, bias,",
            " * acc) runs n >= 1 iterations of 8 k steps: a[r] are the rows' inputs, *w the",
            " * panel (8 floats per k step); the accumulators start at bias[0], bias[1] (columns",
            " * 0-3, 4-7), add the products in k order and end in acc[r * 2 + col]; the pointers",
            " * are advanced past what was consumed. */",
            "#ifndef MNV3_NEON_F32_GEMM_LOOPS_H", "#define MNV3_NEON_F32_GEMM_LOOPS_H", ""]
    out = ["/* Generated by tools/generate/neon_f32_gemm.py: do not edit. The k loops of the AArch64"] + head + [
           "/* An assembly body is one string, longer than the 4095 characters ISO C asks every",
           " * compiler to accept; GCC and Clang, the only ones that read GNU inline assembly,",
           " * take any length. */",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif", ""]
    out.pop()  # function() starts with a blank line
    for rows in range(1, MAX_ROWS + 1):
        out.append(function(rows))
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
