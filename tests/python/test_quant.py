"""Quantized inference against TensorFlow Lite's reference kernels (LiteRT's BUILTIN_REF
op resolver) on the real models of ../shared:
- every op of the three graphs, computed by the integer mirror (mnv3.convert.quant) from the
  interpreter's own inputs, equals the interpreter's output byte for byte;
- the imported network (through an .mnv3 file round trip), run by the mirror, reproduces
  every intermediate tensor and the quantized logits;
- the C library (build/libmnv3.so) reproduces the mirror layer by layer, through its tap;
- graphs the runtime cannot reproduce exactly are refused, naming the op and tensor.
Skipped with a message when ../shared, LiteRT (ai_edge_litert), tflite or the library is
absent."""
import ctypes
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, HERE)

from mnv3.convert import modelfile as mnv3file  # noqa: E402
from mnv3.convert import quant as mnv3quant  # noqa: E402

SHARED = os.environ.get("MNV3_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
MODELS = ["mobilenet_v3_small_1.0_224_uint8", "mobilenet_v3_small_int8_seed1",
          "mobilenet_v3_large_int8_seed1"]
IMAGES = ["chelsea", "coffee"]
LIB = os.environ.get("MNV3_LIB", os.path.join(ROOT, "build", "libmnv3.so"))


def model_path(m):
    p = os.path.join(SHARED, "models", m + ".tflite")
    if not os.path.exists(p):
        pytest.skip(f"{p} not found (the shared models are absent)")
    pytest.importorskip("tflite", reason="python package tflite not installed")
    return p


def reference(m, image, kind):
    return np.load(os.path.join(SHARED, "reference", f"{m}__{image}__{kind}.npy"))


def as_int8(a):
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return (a.astype(np.int16) - 128).astype(np.int8)
    return a.astype(np.int8)


@pytest.fixture(scope="module")
def interpreter_runs():
    pytest.importorskip("ai_edge_litert", reason="LiteRT (pip install ai-edge-litert) absent")
    from tflite_ops import run_interpreter
    cache = {}

    def get(m, image):
        if (m, image) not in cache:
            cache[(m, image)] = run_interpreter(model_path(m), reference(m, image, "input"))
        return cache[(m, image)]
    return get


@pytest.fixture(scope="module")
def imported():
    cache = {}

    def get(m):
        if m not in cache:
            from mnv3.convert.import_tflite import import_tflite
            net = import_tflite(model_path(m))
            tensors = net.tflite_tensors
            net = mnv3file.from_bytes(mnv3file.to_bytes(net))
            net.tflite_tensors = tensors
            cache[m] = net
        return cache[m]
    return get


@pytest.mark.parametrize("m", MODELS)
@pytest.mark.parametrize("image", IMAGES)
def test_every_op_matches_the_interpreter(m, image, interpreter_runs):
    from tflite_ops import Graph, OpMirror, to_i8
    tensors = interpreter_runs(m, image)
    with open(model_path(m), "rb") as f:
        g = Graph(f.read())
    mirror = OpMirror(g, tensors)
    checked = 0
    for i, (kind, _) in enumerate(g.ops):
        y = mirror.eval(i)
        if y is None:
            continue
        out = g.op_output(i)
        want = to_i8(tensors[out], g.ttype(out), g.tfl)
        assert y.shape == want.shape and np.array_equal(y, want), (
            f"op {i} ({kind}) -> tensor {out} '{g.name(out)}': "
            f"{int(np.sum(y != want))} bytes differ")
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("m", MODELS)
@pytest.mark.parametrize("image", IMAGES)
def test_imported_network_matches_every_layer(m, image, interpreter_runs, imported):
    net = imported(m)
    tensors = interpreter_runs(m, image)
    taps = {}
    logits = mnv3quant.forward(net, as_int8(reference(m, image, "input"))[0], taps)
    for name, t in net.tflite_tensors.items():
        if name not in taps:
            continue
        want = as_int8(tensors[t]).reshape(-1)
        got = np.asarray(taps[name]).reshape(-1)
        assert np.array_equal(got, want), f"{m} {image}: layer {name} differs in " \
                                          f"{int(np.sum(got != want))} bytes"
    ref = as_int8(reference(m, image, "ref_logits")).reshape(-1)
    assert np.array_equal(logits, ref)


def load_library():
    if not os.path.exists(LIB):
        pytest.skip(f"{LIB} not built (make)")
    lib = ctypes.CDLL(LIB)
    lib.mnv3_status_string.restype = ctypes.c_char_p
    return lib


TAP = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_void_p,
                       ctypes.c_size_t)


def c_layers(lib, path, x_bytes, classes, isa=0, threads=1):
    """Runs the C library on quantized input bytes; returns its logits and every layer's
    result (in order) through the debugging tap."""
    model = ctypes.c_void_p()
    err = ctypes.create_string_buffer(4 + 256)
    st = lib.mnv3_model_load_file(path.encode(), 0, ctypes.byref(model), err)
    assert st == 0, err.raw[4:].split(b"\0")[0]
    cfg = (ctypes.c_uint32 * 7)()
    lib.mnv3_config_init(cfg, model)
    cfg[3] = 1  # NHWC
    cfg[4] = threads
    cfg[5] = isa
    ctx = ctypes.c_void_p()
    assert lib.mnv3_context_create(model, cfg, None, ctypes.c_size_t(0), ctypes.byref(ctx),
                                   err) == 0
    layers = []

    def tap(user, layer, name, data, size):
        layers.append((name.decode(), ctypes.string_at(data, size)))
    cb = TAP(tap)
    lib.mnv3_context_set_tap(ctx, cb, None)
    out = ctypes.create_string_buffer(classes)
    st = lib.mnv3_run_quantized(ctx, x_bytes, ctypes.c_size_t(len(x_bytes)), out,
                                ctypes.c_size_t(classes), None, ctypes.c_size_t(0))
    assert st == 0
    lib.mnv3_context_free(ctx)
    lib.mnv3_model_free(model)
    return out.raw, layers


@pytest.mark.parametrize("m", MODELS)
def test_c_library_matches_the_mirror_layer_by_layer(m, imported, tmp_path):
    lib = load_library()
    net = imported(m)
    path = str(tmp_path / "model.mnv3")
    mnv3file.write_file(net, path)
    x = reference(m, "coffee", "input")
    taps = {}
    mnv3quant.forward(net, as_int8(x)[0], taps)
    logits, layers = c_layers(lib, path, x.tobytes(), net.num_classes)
    assert logits == reference(m, "coffee", "ref_logits").tobytes()
    compared = 0
    for name, data in layers:
        block = name.split(".")[0]
        mirror = {"se": f"{block}.se.gate",
                  "project": f"{block}.residual" if f"{block}.residual" in taps
                  else f"{block}.project"}.get(name.split(".")[-1], name)
        if mirror not in taps:
            continue
        want = np.asarray(taps[mirror], np.int8).tobytes()
        assert data == want, f"{m}: C layer {name} differs from the mirror's {mirror}"
        compared += 1
    assert compared >= len(net.blocks) * 2


# --- refusals ------------------------------------------------------------------------------------

def refusal(m, patch):
    """Imports m with one Graph method patched; returns the refusal message."""
    from mnv3.convert import import_tflite
    from mnv3.convert.import_tflite import Graph, TfliteImportError
    path = model_path(m)
    original = {k: getattr(Graph, k) for k in patch}
    try:
        for k, f in patch.items():
            setattr(Graph, k, f(original[k]))
        with pytest.raises(TfliteImportError) as e:
            import_tflite.import_tflite(path)
        return str(e.value)
    finally:
        for k, f in original.items():
            setattr(Graph, k, f)


def test_refuses_per_channel_activations():
    def quant(orig):
        def q(self, t):
            r = orig(self, t)
            if r is not None and self.raw(t) is None and t not in self.inputs:
                s, z, d = r
                return np.repeat(s, 2), np.repeat(z, 2), d
            return r
        return q
    msg = refusal("mobilenet_v3_small_int8_seed1", {"quant": quant})
    assert "per channel" in msg and "op " in msg and "tensor " in msg


def test_refuses_int16_activations():
    def ttype(orig):
        def t(self, i):
            typ = orig(self, i)
            if self.raw(i) is None and i in self.producer and self.ops[self.producer[i]][0] \
                    == "DEPTHWISE_CONV_2D":
                return self.tfl.TensorType.INT16
            return typ
        return t
    msg = refusal("mobilenet_v3_small_int8_seed1", {"ttype": ttype})
    assert "int16" in msg and "DEPTHWISE_CONV_2D" in msg and "tensor " in msg


def test_refuses_an_op_outside_the_list():
    def init(orig):
        def i(self, data):
            orig(self, data)
            k = next(n for n, (kind, _) in enumerate(self.ops) if kind == "HARD_SWISH")
            self.ops[k] = ("LOGISTIC", self.ops[k][1])
        return i
    msg = refusal("mobilenet_v3_small_1.0_224_uint8", {"__init__": init})
    assert "LOGISTIC" in msg


def test_float_import_stays_available():
    from mnv3.convert.import_tflite import import_tflite
    net = import_tflite(model_path("mobilenet_v3_small_int8_seed1"), float_model=True)
    assert net.quant is None and net.stem.weight.dtype == np.float32
    assert mnv3file.from_bytes(mnv3file.to_bytes(net)).quant is None


def test_quantized_file_round_trip_is_canonical(imported):
    net = imported("mobilenet_v3_small_1.0_224_uint8")
    data = mnv3file.to_bytes(net)
    assert data[8:12] == b"\x01\x00\x01\x00"  # version 1.1
    assert mnv3file.to_bytes(mnv3file.from_bytes(data)) == data


def test_mean_multiplier_folds_the_count():
    # MEAN over 7x7 of a multiplier 0.75: 0.75 / 49 in integers, as TFLite's reduce does.
    m, e = mnv3quant.quantize_multiplier(0.75)
    fm, fe = mnv3quant.mean_multiplier((m, e), 49)
    assert abs(fm * 2.0 ** (fe - 31) - 0.75 / 49) < 1e-9


def test_numpy_reference_runs_quantized_networks_as_the_library(imported):
    """mnv3ref.forward of a quantized network is mnv3_run's float path: input quantized,
    integer network, logits dequantized."""
    from mnv3.convert import reference as mnv3ref
    m = "mobilenet_v3_small_1.0_224_uint8"
    net = imported(m)
    q = reference(m, "coffee", "input").astype(np.float32)
    x = (q - 128) / 127  # the model's own normalisation of its uint8 input
    logits, feats = mnv3ref.forward(net, x, mnv3file.NHWC)
    scale, zp = net.head[-1].quant.result()
    ref = as_int8(reference(m, "coffee", "ref_logits")).reshape(-1).astype(np.float32)
    assert np.array_equal(logits[0].astype(np.float32), np.float32(scale) * (ref - zp))
    assert int(np.argmax(logits[0])) == 968 and feats.shape == (1, net.feature_dim)
