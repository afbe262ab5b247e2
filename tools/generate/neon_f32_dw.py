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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neon_f32_gemm import Macro, Seq, c_code, c_comment, expand, header_macros, wrap  # noqa: E402

SHAPES = ((3, 1), (3, 2), (5, 1), (5, 2))


def group(ks: int, s: int) -> int:
    """Outputs per group: 10 where the registers allow (3x3 stride 1), else 8."""
    return 10 if (ks, s) == (3, 1) else 8


class Geometry:
    """The registers of the loop of one shape, G outputs per group."""

    def __init__(self, ks: int, s: int, G: int):
        self.ks, self.s, self.G = ks, s, G
        self.T = (G - 1) * s + ks
        # all weights in registers where the window then still fits, else each row's own
        self.w_held = ks == 3 and s == 1
        self.in_first = G + 9 if self.w_held else G + ks
        assert self.T <= 32 - self.in_first, "a row's window must fit in the free registers"
        self.nb = (self.T - 1) // 4  # row pointers p1.. besides the row itself

    def w_reg(self, ky: int, kx: int) -> int:
        return self.G + (ky * 3 + kx if self.w_held else kx)

    def reg(self, t: int) -> int:
        return self.in_first + t

    def window(self, row: str) -> list:
        """The loads of a row's window: t = 4k + i from [p<k>, o<i>], p0 the row, p<k> = row +
        4k * C computed ahead of the group's first load (their latency hidden behind it)."""
        loads = [f"add %[p{k}], %[{row}], %[b{k}]" for k in range(1, self.nb + 1)]
        for t in range(self.T):
            base, off = divmod(t, 4)
            src = f"%[{row}]" if base == 0 else f"%[p{base}]"
            loads.append(f"ldr q{self.reg(t)}, [{src}" + (f", %[o{off}]]" if off else "]"))
        return loads

    def tag(self) -> str:
        return f"{self.ks}X{self.ks}S{self.s}" + (f"_G{self.G}" if self.G != 8 or self.w_held else "")


def zip_loads(loads: list, extra: list) -> list:
    """A row's group: its window loads and the other loads alternating."""
    out, loads, extra = [], list(loads), list(extra)
    while loads or extra:
        if loads:
            out.append(loads.pop(0))
        if extra:
            out.append(extra.pop(0))
    return out


def store_lines(G: int) -> list:
    """A group's G sums to out; output j at base j // 4 (p<k> = out + 4k * C, the window's
    bases being free by now); out steps past them."""
    out, base = [], "%[out]"
    for k in range((G + 3) // 4):
        if k:
            out.append(f"add %[p{k}], {base}, %[b1]")
            base = f"%[p{k}]"
        for i in range(min(4, G - 4 * k)):
            out.append(f"str q{4 * k + i}, [{base}" + (f", %[o{i}]]" if i else "]"))
    return out + [f"add %[out], {base}, " + (f"%[o{G % 4}]" if G % 4 else "%[b1]")]


def schedule(ks: int, s: int, G: int, arrangement: str = "4s", label: str = "") -> list:
    """The instructions of the loop of one shape: each input row's window loaded as one
    group with the row's weights where not held and, on the first row, the bias; the FMLAs
    kx-major; then the pointer steps and the stores."""
    g = Geometry(ks, s, G)
    body = []
    for ky in range(ks):
        extra = []
        if not g.w_held:
            extra += [f"ldr q{g.w_reg(ky, kx)}, [%[w], #{16 * (ky * ks + kx)}]" for kx in range(ks)]
        if ky == 0:
            extra += [f"ldr q{j}, [%[bias]]" for j in range(G)]
        body += zip_loads(g.window(f"r{ky}"), extra)
        for kx in range(ks):
            for j in range(G):
                body.append(f"fmla v{j}.{arrangement}, v{g.reg(j * s + kx)}.{arrangement}, "
                            f"v{g.w_reg(ky, kx)}.{arrangement}")
    tail = [f"add %[r{ky}], %[r{ky}], %[step]" for ky in range(ks)]
    tail += ["subs %[n], %[n], #1"] + store_lines(G)
    pre = [f"ldr q{G + i}, [%[w], #{16 * i}]" for i in range(9)] if g.w_held else []
    lab = label or f".Ldw{ks}x{ks}s{s}_loop%="
    return pre + [lab + ":"] + body + tail + [f"b.ne {lab}"]


# ---- The header's macros (neon_f32_gemm.Macro), shared with the float16 loops ------------
# T, the arrangement: 4s (float32) or 8h (float16); L, the loop's label.
SEP = "\\n\\t"

FMLA = Macro("DWL_FMLA", ["A", "X", "W", "T"], lambda a, x, w, t: [f"fmla v{a}.{t}, v{x}.{t}, v{w}.{t}"],
             "DWL_FMLA(A, X, W, T): vA += vX * vW, lanes of arrangement T (4s: float32, 8h: "
             "float16).")
TAP = {}
TAP[8] = Macro("DWL_TAP_8", ["T", "W"] + [f"X{j}" for j in range(8)],
               lambda t, w, *xs: [FMLA(j, x, w, t) for j, x in enumerate(xs)],
               "DWL_TAP_8(T, W, X0, ..., X7), DWL_TAP_10(T, W, X0, ..., X9): one tap (weights vW) "
               "of a group of 8, 10 outputs: output j (accumulator vj) += input vXj times it.")
TAP[10] = Macro("DWL_TAP_10", ["T", "W"] + [f"X{j}" for j in range(10)],
                lambda t, w, *xs: [TAP[8](t, w, *xs[:8])] +
                [FMLA(j, xs[j], w, t) for j in range(8, 10)], None)
W_LOAD = Macro("DWL_W", ["V", "OFF"], lambda v, off: [f"ldr q{v}, [%[w], #{off}]"],
               "DWL_W(V, OFF), DWL_BIAS(A): weight vector vV from byte OFF of w; accumulator vA "
               "starts at the bias.")
BIAS = Macro("DWL_BIAS", ["A"], lambda a: [f"ldr q{a}, [%[bias]]"], None)
KEEP = Macro("DWL_KEEP", ["L"], lambda ld: [ld],
             "DWL_KEEP(L), DWL_DROP(L): the bias loads, kept with the first row's window, left "
             "out of the others'.")
DROP = Macro("DWL_DROP", ["L"], lambda ld: [], None, drops=("L",))
ADD_ROW = Macro("DWL_ADD_ROW", ["R"], lambda r: [f"add %[{r}], %[{r}], %[step]"],
                "DWL_ADD_ROW(R): input row %[R] steps to the next group.")


STR_8 = Macro("DWL_STR_8", None, lambda: store_lines(8)[:-1],
              "DWL_STR_8: sums 0-7 of a group to out, c4 bytes apart (4-7 through p1 = out + 4 "
              "* c4, the window's bases being free by then).")
STORE = {8: Macro("DWL_STORE_8", None, lambda: [STR_8] + store_lines(8)[-1:],
                  "DWL_STORE_8, DWL_STORE_10: the group's 8, 10 sums to out (DWL_STR_8, then "
                  "8-9 through p2); out steps past them."),
         10: Macro("DWL_STORE_10", None, lambda: [STR_8] + store_lines(10)[len(store_lines(8)) - 1:],
                   None)}


ADDP = Macro("DWL_ADDP", ["K", "R"], lambda k, r: [f"add %[p{k}], %[{r}], %[b{k}]"],
             "DWL_ADDP(K, R): window base pK = input row %[R] + 4K inputs.")
LD0 = Macro("DWL_LD0", ["X", "P"], lambda x, p: [f"ldr q{x}, [%[{p}]]"],
            "DWL_LD0(X, P), DWL_LD(X, P, I): window input vX from base %[P], at offset %[oI].")
LD = Macro("DWL_LD", ["X", "P", "I"], lambda x, p, i: [f"ldr q{x}, [%[{p}], %[o{i}]]"], None)
QUAD = Macro("DWL_QUAD", ["X0", "X1", "X2", "X3", "P", "E0", "E1", "E2", "E3"],
             lambda x0, x1, x2, x3, p, *es: [LD0(x0, p), es[0], LD(x1, p, 1), es[1],
                                             LD(x2, p, 2), es[2], LD(x3, p, 3), es[3]],
             "DWL_QUAD(X0, X1, X2, X3, P, E0, E1, E2, E3): the 4 window inputs from base %[P] "
             "into vX0.., each followed by E<i> (the load the row's group pairs with it, or "
             "empty).")


def _loads_body(g: Geometry):
    def body(row, b, *offs):
        extra = [] if g.w_held else [W_LOAD(g.w_reg(0, kx), offs[kx]) for kx in range(g.ks)]
        extra += [b(BIAS(j)) for j in range(g.G)]
        extra += [None] * (g.nb + g.T - len(extra))
        assert len(extra) == g.nb + g.T, "the extras pair with the window's loads"
        lines = [Seq([ADDP(k, row), extra[k - 1]]) for k in range(1, g.nb + 1)]
        for base in range(0, g.T, 4):
            p = row if base == 0 else f"p{base // 4}"
            es = extra[g.nb + base:g.nb + base + 4]
            xs = [g.reg(t) for t in range(base, min(base + 4, g.T))]
            if len(xs) == 4:
                lines.append(QUAD(*xs, p, *es))
            else:
                lines += [Seq([LD0(x, p) if i == 0 else LD(x, p, i), es[i]]) for i, x in enumerate(xs)]
        return lines
    return body


def _taps_body(g: Geometry):
    def body(t, *ws):
        return [TAP[g.G](t, ws[kx] if g.w_held else g.w_reg(0, kx),
                         *[g.reg(j * g.s + kx) for j in range(g.G)]) for kx in range(g.ks)]
    return body


LOADS, TAPS = {}, {}


def row_macros(g: Geometry):
    """DWL_LOADS_<tag>, DWL_TAPS_<tag> of a shape (made once)."""
    tag = g.tag()
    if tag not in LOADS:
        held = "" if g.w_held else ", O0, ..."
        LOADS[tag] = Macro(
            f"DWL_LOADS_{tag}", ["R", "B"] + ([] if g.w_held else [f"O{kx}" for kx in range(g.ks)]),
            _loads_body(g),
            f"DWL_LOADS_{tag}(R, B{held}): the load group of input row %[R] of the "
            f"{g.ks}x{g.ks} stride-{g.s} loop, groups of {g.G}: its {g.T}-input window"
            + ("" if g.w_held else ", the row's weights from bytes O0.. of w") +
            ", and the bias loads through B (DWL_KEEP, DWL_DROP).")
        TAPS[tag] = Macro(
            f"DWL_TAPS_{tag}", ["T"] + ([f"W{kx}" for kx in range(3)] if g.w_held else []),
            _taps_body(g),
            f"DWL_TAPS_{tag}(T{', W0, W1, W2' if g.w_held else ''}): the {g.ks} taps of a "
            f"row of the {g.ks}x{g.ks} stride-{g.s} loop, kx-major"
            + (" (weights vW<kx>)" if g.w_held else f" (weights v{g.w_reg(0, 0)}..)") + ".")
    return LOADS[tag], TAPS[tag]


def _rows_body(ks: int):
    def body(t, label, loads, taps):
        code = [f".{label}%=:"]
        for ky in range(ks):
            code += [loads(f"r{ky}", KEEP if ky == 0 else DROP,
                           *[16 * (ky * ks + kx) for kx in range(ks)]), taps(t)]
        return code + [Seq(ADD_ROW(f"r{ky}") for ky in range(ks)), "subs %[n], %[n], #1",
                       STORE[8], f"b.ne .{label}%="]
    return body


ROWS = {ks: Macro(f"DWL_ROWS_{ks}", ["T", "L", "LOADS", "TAPS"], _rows_body(ks),
                  f"DWL_ROWS_{ks}(T, L, LOADS, TAPS): the loop (label L) of a {ks}x{ks} shape "
                  "whose rows load their weights, groups of 8: each row's load group (LOADS, the "
                  "shape's DWL_LOADS_) and taps (TAPS), then the pointer steps and the stores.")
        for ks in (3, 5)}


def _held_body(t, label, loads, taps, store, *ws):
    code = [Seq(W_LOAD(w, 16 * i) for i, w in enumerate(ws)), f".{label}%=:"]
    for ky in range(3):
        code += [loads(f"r{ky}", KEEP if ky == 0 else DROP), taps(t, *ws[3 * ky:3 * ky + 3])]
    return code + [Seq(ADD_ROW(f"r{ky}") for ky in range(3)), "subs %[n], %[n], #1", store,
                   f"b.ne .{label}%="]


HELD = Macro("DWL_HELD_3X3", ["T", "L", "LOADS", "TAPS", "STORE"] + [f"W{i}" for i in range(9)],
             _held_body,
             "DWL_HELD_3X3(T, L, LOADS, TAPS, STORE, W0, ..., W8): the loop (label L) of a 3x3 "
             "shape whose 9 weights stay in vW0.. (loaded first): each row's load group and "
             "taps, the pointer steps and the stores (STORE).")


def asm_code(ks: int, s: int, G: int, arrangement: str, label: str):
    """The loop of one shape as a macro use."""
    g = Geometry(ks, s, G)
    loads, taps = row_macros(g)
    if g.w_held:
        return HELD(arrangement, label, loads, taps, STORE[G], *[g.w_reg(0, i) for i in range(9)])
    assert G == 8
    return ROWS[ks](arrangement, label, loads, taps)


def function_macro(ks: int, nb: int) -> str:
    """DWL_LOOP_K<ks>_P<nb>: the function around a loop of ks input rows whose windows take
    nb row pointers besides the row, for either element type."""
    rows = ", ".join(f"*r{ky} = q[{ky}]" for ky in range(ks))
    bs = ", ".join(f"b{k} = {4 * k} * c4" for k in range(1, nb + 1))
    ps = ", ".join(f"*p{k}" for k in range(1, nb + 1))
    outs = ", ".join([f'[r{ky}] "+r"(r{ky})' for ky in range(ks)] + ['[out] "+r"(out)', '[n] "+r"(n)'] +
                     [f'[p{k}] "=&r"(p{k})' for k in range(1, nb + 1)])
    boffs = ", ".join(f'[b{k}] "r"(b{k})' for k in range(1, nb + 1))
    clobbers = (", ".join(f'"v{v}"' for v in range(16)) + ",\n          " +
                ", ".join(f'"v{v}"' for v in range(16, 32)))
    lines = [
        "static inline __attribute__((always_inline)) void NAME(",
        "    const E *const *q, E *out, uint64_t c4, uint64_t n, const V *w, const V *bias) {",
        f"    const E {rows};",
        "    const uint64_t o2 = 2 * c4, o3 = 3 * c4, step = STEP * c4;",
        f"    uint64_t {bs};",
        f"    const E {ps};",
        "    __asm__ volatile(ASM",
        f"        : {outs}",
        f'        : [o1] "r"(c4), [o2] "r"(o2), [o3] "r"(o3), {boffs}, [step] "r"(step),',
        '          [w] "r"(w), [bias] "r"(bias)',
        f'        : {clobbers},',
        '          "cc", "memory");',
        "}"]
    doc = c_comment(f"DWL_LOOP_K{ks}_P{nb}(NAME, E, V, STEP, ASM): defines NAME(q, out, c4, n, "
                    f"w, bias), the loop ASM over {ks} input rows whose windows need {nb} "
                    "pointers besides the row (p1..), on elements E (vectors V) in groups of "
                    "STEP / stride outputs; q[ky] is row ky at the first window column.")
    return "\n".join(doc + [f"#define DWL_LOOP_K{ks}_P{nb}(NAME, E, V, STEP, ASM) \\"] +
                     [ln + " \\" for ln in "\n".join(lines[:-1]).split("\n")] + [lines[-1]])


def loop_names(ks: int, s: int, G: int):
    """The function macro of a shape and its group's step, in outputs times the stride."""
    return f"DWL_LOOP_K{ks}_P{Geometry(ks, s, G).nb}", G * s


def instance(name: str, ks: int, s: int, G: int, elem: str, vec: str, arrangement: str,
             label: str) -> str:
    """The definition of one loop function, checked against its schedule."""
    code = asm_code(ks, s, G, arrangement, label)
    if expand(code) != schedule(ks, s, G, arrangement, f".{label}%="):
        raise SystemExit(f"neon_f32_dw: the macros of {name} are not its schedule")
    fn, step = loop_names(ks, s, G)
    held = ("weights held in registers" if Geometry(ks, s, G).w_held else
            "each row's weights loaded with its window")
    indent = " " * (len(fn) + 1)
    return "\n".join(c_comment(f"{ks}x{ks}, stride {s}: groups of {G} outputs, {held}.") +
                      [f"{fn}({name}, {elem}, {vec}, {step},"] +
                      wrap(c_code(code, SEP), indent)[:-1] + [wrap(c_code(code, SEP), indent)[-1] + ")"])


FUNCTIONS = sorted({(ks, Geometry(ks, s, G).nb) for ks, s in SHAPES for G in (8, group(ks, s))})


def f32_codes() -> list:
    return [asm_code(ks, s, group(ks, s), "4s", f"Ldw{ks}x{ks}s{s}_loop") for ks, s in SHAPES]


def main() -> int:
    out = ["/* Generated by tools/generate/neon_f32_dw.py: do not edit. The hot loops of the AArch64",
           " * depthwise microkernels; see the generator for the schedule.",
           " * dwn_loop_<K>x<K>s<S>(q, out, c4, n, w, bias) runs n >= 1 groups of G outputs of one",
           " * channel vector (G: DWN_GROUP(K, S)): q[ky] is input row ky at the group's first window",
           " * column, pixels c4 bytes apart, as are the outputs from out; w holds the K*K float32",
           " * weight vectors (ky-major), bias G copies of the bias vector. Writes the raw sums (bias",
           " * and taps). The macros serve the float16 loops too (neon_f16_dw_loops.h). */",
           "#ifndef MNV3_NEON_F32_DW_LOOPS_H", "#define MNV3_NEON_F32_DW_LOOPS_H", "",
           "#if defined(__clang__)", "#pragma clang diagnostic push",
           '#pragma clang diagnostic ignored "-Woverlength-strings"', "#endif", ""]
    # the float16 loops' 3x3 stride-1 rows (groups of 8) are defined with theirs
    out.append(header_macros(f32_codes(), SEP))
    for ks, nb in FUNCTIONS:
        out += ["", function_macro(ks, nb)]
    for ks, s in SHAPES:
        out += ["", instance(f"dwn_loop_{ks}x{ks}s{s}", ks, s, group(ks, s), "float", "vf", "4s",
                             f"Ldw{ks}x{ks}s{s}_loop")]
    out += ["", "#if defined(__clang__)", "#pragma clang diagnostic pop", "#endif", "", "#endif"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
