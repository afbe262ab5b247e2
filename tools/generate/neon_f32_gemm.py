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
import re
import sys

# ---- The headers' C macros -------------------------------------------------------------
# The generated headers write each repeated group of instructions once, as a C
# preprocessor macro that expands to string literals (adjacent literals concatenate into
# the one string of the asm statement), parameterised where registers or operands differ:
# `#P` pastes the spelling of argument P into the text. C macros, not GNU assembler ones,
# so that the compiler's -S output, which `make mca` reads, has every instruction written
# out. A Macro below is both the text of its #define and, applied to arguments, the
# instructions it expands to: every generator checks that its functions' macro uses
# spell out exactly the schedule it computes (expand() against the instruction list).
# The other generators import these from here.


class Param:
    """A macro parameter while its definition is written: it formats as a marker that
    c_string turns into `#NAME`, stands for itself as an argument or a code item, and
    called (a parameter that names a macro) is a use of that macro."""

    def __init__(self, name: str):
        self.name = name

    def __format__(self, spec: str) -> str:
        return f"\0{self.name}\0"

    def __call__(self, *args):
        return Use(self, args)


class Use:
    """A macro applied to arguments: numbers and names (pasted as they are spelled), other
    uses (code), macros (names of macros the body applies), None (an empty argument, no
    code)."""

    def __init__(self, macro, args):
        self.macro, self.args = macro, tuple(args)

    def __format__(self, spec: str) -> str:
        raise TypeError(f"{self.macro.name}: a macro use cannot be pasted into text")


class Macro:
    """`#define NAME(PARAMS) BODY`; params None: an object-like macro (then `NAME` itself
    is its use), a last parameter "...": variadic. body(*args) returns the items of the
    expansion: instruction text (str), uses, parameters, None (nothing) or lists of
    these. doc says what it emits (a comment above the definition; None: none, for the
    members of a family after the first)."""

    created = 0

    def __init__(self, name: str, params, body, doc, drops=()):
        self.name, self.params, self.body, self.doc = name, params, body, doc
        self.drops = drops  # parameters the expansion leaves out on purpose
        self.use = Use(self, ()) if params is None else None
        self.order = Macro.created
        Macro.created += 1

    def __call__(self, *args):
        fixed = len(self.params) - (self.params[-1:] == ["..."])
        if len(args) < fixed or (len(args) > fixed and self.params[-1:] != ["..."]):
            raise TypeError(f"{self.name}: {len(args)} arguments for {self.params}")
        return Use(self, args)


class Seq(tuple):
    """Items written on one line, as many as fit, then the next (in a function's asm
    statement, in a macro's definition, or as one macro argument of several uses): a
    tile's uses of one macro for each of its rows, a multiply and the load after it."""


def _items(x) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)) and not isinstance(x, Seq):
        return [i for y in x for i in _items(y)]
    return [x.use] if isinstance(x, Macro) and x.params is None else [x]


def expand(code) -> list:
    """The instructions that code (items as a body returns them) expands to."""
    out = []
    for item in _items(code):
        if isinstance(item, str):
            assert "\0" not in item, item
            out.append(item)
        elif isinstance(item, Use) and isinstance(item.macro, Macro):
            out += expand(item.macro.body(*item.args))
        elif isinstance(item, Seq):
            out += expand(list(item))
        else:
            raise TypeError(f"not code: {item!r}")
    return out


def c_string(text: str, sep: str) -> str:
    """Instruction text as C: string literals ending in sep, `#P` where parameter P is
    pasted."""
    parts = text.split("\0")
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("#" + part)
        elif part or i == len(parts) - 1:
            out.append(f'"{part}{sep if i == len(parts) - 1 else ""}"')
    return " ".join(out)


def c_arg(arg) -> str:
    if arg is None:
        return ""
    if isinstance(arg, (list, tuple)) and not isinstance(arg, Seq):
        return ", ".join(c_arg(a) for a in arg)
    if isinstance(arg, (Param, Macro)):
        return arg.name
    if isinstance(arg, Use):
        return c_code(arg, "")
    if isinstance(arg, Seq):
        assert all(isinstance(i, Use) for i in _items(list(arg))), "uses only"
        return c_code(arg, "").replace("\0", " ")
    return str(arg)


def c_code(item, sep: str) -> str:
    """One item of a body as C."""
    if isinstance(item, str):
        return c_string(item, sep)
    if isinstance(item, Param):
        return item.name
    if isinstance(item, Seq):
        return "\0".join(c_code(i, sep) for i in _items(list(item)))
    if isinstance(item, Use):
        if isinstance(item.macro, Macro) and item.macro.params is None:
            return item.macro.name
        return f"{item.macro.name}({', '.join(c_arg(a) for a in item.args)})"
    raise TypeError(f"not code: {item!r}")


def c_comment(text: str, indent: str = "", width: int = 96) -> list:
    """text as a C comment of lines at most width long."""
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + 3 + len(line) + 1 + len(word) > width - 3:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    out = [f"{indent}/* {lines[0]}"] + [f"{indent} * {ln}" for ln in lines[1:]]
    out[-1] += " */"
    return out


def c_lines(code, sep: str) -> list:
    """code's items as C, one a line."""
    return [c_code(item, sep) for item in _items(code)]


def define(macro: Macro, sep: str, width: int = 96) -> str:
    """The macro's #define (with its comment): on one line where it fits, else one item a
    continuation line."""
    params = macro.params or []
    fixed = [p for p in params if p != "..."]
    args = [Param(p) for p in fixed] + ([Param("__VA_ARGS__")] if "..." in params else [])
    body = [ln[4:] for item in c_lines(macro.body(*args), sep)
            for ln in (wrap(item, "    ", width - 2) if "\0" in item else ["    " + item])]
    for p in fixed:
        if p not in macro.drops and not any(re.search(rf"\b{p}\b", ln) for ln in body):
            raise ValueError(f"{macro.name}: parameter {p} unused")
    head = macro.name if macro.params is None else f"{macro.name}({', '.join(params)})"
    doc = c_comment(macro.doc) if macro.doc else []
    one = f"#define {head} {' '.join(body)}".rstrip()
    if len(one) <= width:
        return "\n".join(doc + [one])
    return "\n".join(doc + [f"#define {head} \\"] +
                     [f"    {ln} \\" for ln in body[:-1]] + [f"    {body[-1]}"])


def macros_used(code, known=()) -> list:
    """The macros code uses, directly or through other macros (and the macros passed to
    them as arguments), each after those it uses: the order of their definitions. Those in
    known (defined elsewhere) are left out."""
    seen, order = set(known), []

    def visit_macro(m: Macro) -> None:
        if m in seen:
            return
        seen.add(m)
        params = m.params or []
        args = [Param(p) for p in params if p != "..."]
        args += [Param("__VA_ARGS__")] if "..." in params else []
        visit(m.body(*args))
        order.append(m)

    def visit(x) -> None:
        for item in _items(x):
            if isinstance(item, Seq):
                visit(list(item))
            elif isinstance(item, Use):
                if isinstance(item.macro, Macro):
                    visit_macro(item.macro)
                for a in item.args:
                    if isinstance(a, Macro):
                        visit_macro(a)
                    elif isinstance(a, Seq):
                        visit(list(a))
                    else:
                        visit(a if isinstance(a, (Use, list, tuple)) else None)

    visit(code)
    return order


def defined(code, known=()) -> list:
    """The macros a header defines for code: those it uses, in the order the generator
    created them (leaves first)."""
    return sorted(macros_used(code, known), key=lambda m: m.order)


def wrap(line: str, indent: str, width: int = 100) -> list:
    """An item as lines at most width long where it can: a Seq's items (c_code joins them
    with NUL) as many a line as fit; a longer macro use with its arguments on as many lines
    as they need, each continuation aligned after the opening parenthesis."""
    if "\0" in line:  # a Seq: its items, as many a line as fit
        lines = [indent]
        for part in line.split("\0"):
            if lines[-1] != indent and len(lines[-1]) + 1 + len(part) > width:
                lines.append(indent)
            lines[-1] += ("" if lines[-1] == indent else " ") + part
        return lines
    if len(indent + line) <= width or "(" not in line:
        return [indent + line]
    head, args = line.split("(", 1)
    parts, depth, cur = [], 0, ""
    for ch in args[:-1]:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    parts.append(cur.strip())
    lines, cur = [], indent + head + "("
    cont = " " * len(cur)
    for i, part in enumerate(parts):
        piece = part + ("," if i < len(parts) - 1 else ")")
        if cur.strip() and cur != cont and len(cur) + 1 + len(piece) > width:
            lines.append(cur.rstrip())
            cur = cont
        cur += ("" if cur.endswith("(") or cur == cont else " ") + piece
    return lines + [cur]


def asm_block(code, sep: str, indent: str = "        ") -> str:
    """An asm statement's template: code's items, one a line (a long use on several)."""
    return "\n".join(ln for item in c_lines(code, sep) for ln in wrap(item, indent))


def header_macros(code, sep: str, known=()) -> str:
    """The definitions of the macros code uses: a blank line before each that has a
    comment, the members of its family (no comment of their own) right after it."""
    out = []
    for m in defined(code, known):
        out += ([""] if m.doc and out else []) + [define(m, sep)]
    return "\n".join(out)


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


def prologue_pointers(one_group: bool):
    """The first block's v24-v27 and the pointers: with one group an iteration, one
    iteration back."""
    if one_group:
        return [weight_load(24, "w"), "sub %[wa0], %[w], #128", "mov %[wa1], %[w]",
                "sub %[wb0], %[w], #192", "sub %[wb1], %[w], #64", "add %[a16], %[a], #16"]
    return [weight_load(24, "w"), "add %[wa], %[w], #128", "add %[wb], %[w], #64",
            "add %[a16], %[a], #16"]


def prologue(rows: int):
    """Float32 weights: what the loop expects at its top: the first block's v24-v27 and the
    pointers; with two groups an iteration (the body ends with the next iteration's
    block-0 inputs), those inputs; with one, pointers one iteration back."""
    if rows in ONE_GROUP_ROWS:
        return prologue_pointers(True)
    return prologue_pointers(False) + [input_load(r, 0) for r in range(rows)]


# ---- The header's macros (see Macro above) -------------------------------------------------
SEP = "\\n\\t"

ROW = Macro("F32G_ROW", ["A0", "A1", "W0", "W1", "X", "J"],
            lambda a0, a1, w0, w1, x, j: [f"fmla v{a0}.4s, v{w0}.4s, v{x}.s[{j}]",
                                          f"fmla v{a1}.4s, v{w1}.4s, v{x}.s[{j}]"],
            "F32G_ROW(A0, A1, W0, W1, X, J): one row's FMLAs of a k step: its accumulators vA0, "
            "vA1 (output vectors 0, 1) += the step's weights vW0, vW1 times lane J of the row's "
            "inputs vX.")


def _step_body(rows: int):
    def body(j, w0, w1, *xs):
        r = rows - 1
        return ([STEP[r](j, w0, w1, *xs[:-1])] if r else []) + [
            ROW(acc_reg(r, 0), acc_reg(r, 1), w0, w1, xs[-1], j)]
    return body


# F32G_STEP_<rows>: k step J of a tile (fmla_step), each a row more than the one before.
STEP = {}
for _rows in range(1, MAX_ROWS + 1):
    STEP[_rows] = Macro(
        f"F32G_STEP_{_rows}", ["J", "W0", "W1"] + [f"X{r}" for r in range(_rows)],
        _step_body(_rows),
        None if _rows > 1 else
        "F32G_STEP_<rows>(J, W0, W1, X0, ..., X<rows-1>): k step J of a tile of that many "
        "rows, row r's inputs in vX<r>, the weights in vW0, vW1 (F32G_ROW for each row, in "
        "order; each macro adds a row to the one before).")

W_LO = Macro("F32G_W_LO", ["P"], lambda p: [weight_load(24, p)],
             "F32G_W_LO(P), F32G_W_HI(P): weight vectors v24-v27 (k steps 0-1 of a block), "
             "v28-v31 (steps 2-3) from the 64 bytes at %[P].")
W_HI = Macro("F32G_W_HI", ["P"], lambda p: [weight_load(28, p)], None)

BLOCK = Macro("F32G_BLOCK", ["STEP", "WB", "WA", "..."],
              lambda step, wb, wa, *xs: [step(0, 24, 25, *xs), W_HI(wb), step(1, 26, 27, *xs),
                                         W_LO(wa), step(2, 28, 29, *xs),
                                         step(3, 30, 31, *xs)],
              "F32G_BLOCK(STEP, WB, WA, inputs...): one block of 4 k steps (block_fmlas): "
              "STEP a tile's F32G_STEP_<rows>, the inputs its row registers; the load of "
              "v28-v31 from %[WB] once step 0 has issued, of the next block's v24-v27 from "
              "%[WA] once step 1, their last reader, has.")

IN0 = Macro("F32G_IN0", ["X", "B"], lambda x, b: [f"ldr q{x}, [%[{b}]]"],
            "F32G_IN0(X, B), F32G_IN(X, B, R): the 4 inputs of row 0, row R (at byte offset "
            "%[o<R>] from row 0) of the block at %[B] into vX (input_load).")
IN = Macro("F32G_IN", ["X", "B", "R"], lambda x, b, r: [f"ldr q{x}, [%[{b}], %[o{r}]]"], None)


def in_load(r: int, half: int, reg: int = -1) -> Use:
    """input_load as a use of F32G_IN0 / F32G_IN."""
    reg = r if reg < 0 else reg
    base = "a16" if half else "a"
    return IN0(reg, base) if r == 0 else IN(reg, base, r)


ONE_GROUP_INTS = ["add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]", "add %[wa0], %[wa0], #256",
                  "add %[wb0], %[wb0], #256", "csel %[pf], %[tmp], %[pf], ne",
                  "subs %[n], %[n], #1", "add %[tmp2], %[wa1], #256",
                  "add %[wb1], %[wb1], #256", None, "csel %[wa1], %[tmp2], %[wa0], ne"]
GROUP1_INTS = ["add %[tmp], %[pf], #64", "cmp %[pf], %[pf_end]", "add %[tmp2], %[wa], #128",
               "add %[wb], %[wb], #128", "csel %[pf], %[tmp], %[pf], ne", "subs %[n], %[n], #1",
               "add %[tmp], %[a], #32", None, "csel %[wa], %[tmp2], %[wa], ne",
               "csel %[a], %[tmp], %[a], ne"]
GROUP0_INTS = ["add %[wb], %[wb], #128", "add %[wa], %[wa], #128", "add %[a16], %[a16], #32"]

GROUP_ONE = Macro(
    "F32G_GROUP_ONE", [f"L{i}" for i in range(1, 13)],
    lambda *ls: pair([prefetch_ints()[0]] + list(ls), ONE_GROUP_INTS) +
    ["add %[a], %[a], #32", "add %[a16], %[a16], #32"],
    "F32G_GROUP_ONE(L1, ..., L12): the load group of the tiles of 2-6 rows "
    "(loop_body_one_group): the prefetch and loads L1.. (both blocks' inputs, empty "
    "arguments past a tile's last), each followed by the integer work of its place "
    "(pair), then the inputs' pointer steps.")
GROUP_B1 = Macro(
    "F32G_GROUP_B1", [f"L{i}" for i in range(1, MAX_ROWS + 1)],
    lambda *ls: pair([prefetch_ints()[0]] + list(ls), GROUP1_INTS),
    "F32G_GROUP_B1(L1, ..., L8), F32G_GROUP_B0(L0, ..., L7): the load groups of block 1 "
    "and of the next iteration's block 0 of the tiles of 1, 7 and 8 rows (loop_body): the "
    "rows' input loads L (empty past a tile's last), paired with the integer work.")
GROUP_B0 = Macro("F32G_GROUP_B0", [f"L{i}" for i in range(MAX_ROWS)],
                 lambda *ls: pair(list(ls), GROUP0_INTS), None)

START_ONE = Macro("F32G_START_ONE", None, lambda: prologue_pointers(True),
                  "F32G_START_ONE: the prologue of the tiles of 2-6 rows: the first block's "
                  "v24-v27 and the pointers one iteration back.")
START_TWO = Macro("F32G_START_TWO", None, lambda: prologue_pointers(False),
                  "F32G_START_TWO: the prologue of the tiles of 1, 7 and 8 rows, but for the "
                  "first block's inputs: the first block's v24-v27 and the pointers.")

BIAS = Macro("F32G_BIAS", None,
             lambda: [f"ldr q{acc_reg(0, 0)}, [%[bias]]", f"ldr q{acc_reg(0, 1)}, [%[bias], #16]"],
             "F32G_BIAS: row 0's accumulators start at the bias.")
COPY = Macro("F32G_COPY", ["A0", "A1"],
             lambda a0, a1: [f"mov v{a0}.16b, v{acc_reg(0, 0)}.16b",
                             f"mov v{a1}.16b, v{acc_reg(0, 1)}.16b"],
             "F32G_COPY(A0, A1): a row's accumulators vA0, vA1 start as row 0's.")
STP = Macro("F32G_STP", ["A0", "A1", "OFF"], lambda a0, a1, off: [f"stp q{a0}, q{a1}, [%[acc], #{off}]"],
            "F32G_STP(A0, A1, OFF): a row's accumulators to acc at byte offset OFF.")


def asm_code(rows: int) -> list:
    """The asm statement of a tile as macro uses."""
    loop = ".Lf32_gemm_loop%="
    if rows in ONE_GROUP_ROWS:
        loads = ([in_load(r, 0) for r in range(rows)] +
                 [in_load(r, 1, reg) for r, reg in enumerate(input_regs(rows, 1))])
        body = [START_ONE, loop + ":",
                GROUP_ONE(*(loads + [None] * (12 - len(loads)))),
                BLOCK(STEP[rows], "wb0", "wa0", *input_regs(rows, 0)),
                BLOCK(STEP[rows], "wb1", "wa1", *input_regs(rows, 1))]
    else:
        nones = [None] * (MAX_ROWS - rows)
        body = [START_TWO, Seq(in_load(r, 0) for r in range(rows)), loop + ":",
                BLOCK(STEP[rows], "wb", "wa", *range(rows)),
                GROUP_B1(*([in_load(r, 1) for r in range(rows)] + nones)),
                BLOCK(STEP[rows], "wb", "wa", *range(rows)),
                GROUP_B0(*([in_load(r, 0) for r in range(rows)] + nones))]
    init = Seq([BIAS] + [COPY(acc_reg(r, 0), acc_reg(r, 1)) for r in range(1, rows)])
    store = Seq(STP(acc_reg(r, 0), acc_reg(r, 1), 32 * r) for r in range(rows))
    return [init] + body + [f"b.ne {loop}", store]


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
    code = asm_code(rows)
    if expand(code) != init + loop + store:
        raise SystemExit(f"neon_f32_gemm: the macros of the {rows}-row tile are not its schedule")
    text = asm_block(code, SEP)
    vregs = sorted(set(list(range(rows)) + list(range(8, 8 + nacc)) + list(range(24, 32)) +
                       input_regs(rows, 1)))
    clobbers = ", ".join(f'"v{v}"' for v in vregs)
    # Row r is addressed as row 0 plus its byte offset (the rows of one activation matrix).
    offsets = ", ".join(f"o{r} = (uint64_t)((const char *)a[{r}] - (const char *)a0)"
                        for r in range(1, rows))
    offsets = f"    const uint64_t {offsets};" if rows > 1 else ""
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
    {" ".join(f"a[{r}] += 8 * n;" for r in range(rows))}
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
    codes = [asm_code(rows) for rows in range(1, MAX_ROWS + 1)]
    out.append(header_macros(codes, SEP))
    for rows in range(1, MAX_ROWS + 1):
        out.append(function(rows))
    out += ["#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
