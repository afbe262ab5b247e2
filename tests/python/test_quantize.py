"""Post-training quantization (tools/quantize.py): the int8 model it writes is valid, agrees
with the float model on held-out inputs, and bad requests are refused with a reason."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mnv3.convert import modelfile as mnv3file  # noqa: E402
from mnv3.convert import quant as mnv3quant  # noqa: E402
from mnv3.convert import quantize  # noqa: E402
from test_quant import c_layers, load_library  # noqa: E402
from test_tools import SHARED, filled  # noqa: E402

TFLITE_MODEL = os.path.join(SHARED, "models", "mobilenet_v3_small_1.0_224_uint8.tflite")


@pytest.fixture()
def small_float(tmp_path):
    net = filled("small", "torchvision", 0.5, 7, 0)
    net.preprocess.height = net.preprocess.width = 48
    path = tmp_path / "float.mnv3"
    mnv3file.write_file(net, str(path))
    rng = np.random.default_rng(3)
    calib = tmp_path / "calib.npy"
    np.save(calib, rng.integers(0, 256, (6, 60, 52, 3), dtype=np.uint8))
    return path, calib


@pytest.mark.parametrize("method", quantize.METHODS)
def test_quantized_model_is_valid_and_agrees(small_float, tmp_path, method):
    src, calib = small_float
    dst = tmp_path / f"{method}.mnv3"
    report = quantize.quantize_file(str(src), str(dst), [str(calib)], method=method, holdout=2)
    q = mnv3file.read_file(str(dst))
    assert q.quant is not None
    mnv3file.validate(q)
    for c in q.convs():
        assert c.weight.dtype == np.int8 and np.abs(c.weight.astype(int)).max() <= 127
        assert c.bias is None or c.bias.dtype == np.int32
    assert report["inputs"] == 2
    # Random weights, 48x48: measured agreement 1.0 and relative error below 0.02.
    assert report["top1_agreement"] == 1.0
    assert report["max_relative_logit_error"] < 0.08
    # The int8 file is about a quarter of the float one.
    assert os.path.getsize(dst) < 0.35 * os.path.getsize(src)


def test_clipping_methods_stay_inside_the_observed_range():
    obs = quantize.Observer()
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 50000), [40.0, -25.0]])
    obs("x", v)
    lo, hi = quantize.choose_range(obs, "x", "minmax", 99.99)
    assert (lo, hi) == (-25.0, 40.0)
    for method in ("percentile", "mse"):
        plo, phi = quantize.choose_range(obs, "x", method, 99.9)
        assert lo <= plo < 0 < phi <= hi
        # Outliers clipped: the error on the bulk of the values is lower than min/max's.
        assert quantize._quant_error(v[:-2], plo, phi) < quantize._quant_error(v[:-2], lo, hi)


def test_qparam_holds_zero_exactly():
    for lo, hi in [(0.0, 6.0), (-3.0, 5.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)]:
        s, z = quantize.qparam(lo, hi)
        assert s > 0 and -128 <= z <= 127
        assert isinstance(z, int)  # real 0 is the integer z: padding stays exact
        # Both ends of the range are representable within one step.
        assert (-128 - z) * s <= min(lo, 0) + s and (127 - z) * s >= max(hi, 0) - s


def test_weights_per_channel_symmetric():
    net = filled("small", "torchvision", 0.5, 7, 0)
    for c in (net.stem, net.blocks[0].depthwise, net.head[-1]):
        q, s = quantize.quantize_weights(c)
        w = np.asarray(c.weight, np.float64)
        deq = q.astype(np.float64) * (s if c.depthwise else s.reshape((-1,) + (1,) * (w.ndim - 1)))
        assert np.abs(deq - w).max() <= s.max() / 2 + 1e-7
        assert np.abs(q.astype(int)).max() == 127


def test_refusals(small_float, tmp_path):
    src, calib = small_float
    dst = str(tmp_path / "q.mnv3")
    with pytest.raises(quantize.QuantizeError, match="at least one"):
        quantize.quantize_file(str(src), dst, [str(calib)], holdout=6)
    with pytest.raises(quantize.QuantizeError, match="method"):
        quantize.quantize_file(str(src), dst, [str(calib)], method="entropy")
    with pytest.raises(quantize.QuantizeError, match="no such file"):
        quantize.quantize_file(str(src), dst, [str(tmp_path / "missing")])
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 5), np.uint8))
    with pytest.raises(quantize.QuantizeError, match=r"\[H,W,3\]"):
        quantize.quantize_file(str(src), dst, [str(bad)])
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((1, 3, 8, 8), np.nan, np.float32))
    with pytest.raises(quantize.QuantizeError, match="NaN"):
        quantize.quantize_file(str(src), dst, [str(nan)])
    quantize.quantize_file(str(src), dst, [str(calib)], holdout=0)
    with pytest.raises(quantize.QuantizeError, match="already quantized"):
        quantize.quantize_file(dst, str(tmp_path / "again.mnv3"), [str(calib)])
    assert quantize.main([str(src), "-o", dst, "--calib", str(tmp_path / "missing")]) == 1


@pytest.mark.skipif(not os.path.exists(TFLITE_MODEL),
                    reason=f"{TFLITE_MODEL} not found (the shared model folder is absent)")
def test_real_model_float_import_quantized_keeps_top1(tmp_path):
    pytest.importorskip("tflite", reason="tflite (the flatbuffer reader) is not installed")
    from mnv3.convert import import_tflite
    src = tmp_path / "float.mnv3"
    mnv3file.write_file(import_tflite.import_tflite(TFLITE_MODEL, float_model=True), str(src))
    images = os.path.join(SHARED, "images")
    cat = np.load(os.path.join(images, "chelsea_224_nhwc_uint8.npy"))[0]
    rng = np.random.default_rng(0)
    crops = []
    for k in range(6):
        y, x = rng.integers(0, 40, 2)
        crop = cat[y:y + 184, x:x + 184]
        crops.append(np.ascontiguousarray(crop[:, ::-1] if k % 2 else crop))
    np.save(tmp_path / "a_calib.npy", np.stack(crops))
    held = os.path.join(images, "coffee_224_nhwc_uint8.npy")
    dst = tmp_path / "int8.mnv3"
    report = quantize.quantize_file(str(src), str(dst), [str(tmp_path / "a_calib.npy"), held],
                                    holdout=1)
    # The held-out photo (an espresso) keeps its class; measured relative error 0.14.
    assert report["top1_agreement"] == 1.0
    assert report["max_relative_logit_error"] < 0.3
    q = mnv3file.read_file(str(dst))
    x = quantize.quantize_input(quantize.load_inputs(q, [held])[0], q.quant.input)
    assert int(np.argmax(mnv3quant.forward(q, x))) == 967 + 1  # 968 espresso (1001 classes)


def test_c_library_runs_the_quantized_model_as_the_mirror(small_float, tmp_path):
    lib = load_library()
    src, calib = small_float
    dst = tmp_path / "int8.mnv3"
    quantize.quantize_file(str(src), str(dst), [str(calib)], method="mse", holdout=0)
    q = mnv3file.read_file(str(dst))
    assert q.num_classes == 7
    x = quantize.quantize_input(quantize.load_inputs(q, [str(calib)])[0], q.quant.input)
    want = mnv3quant.forward(q, x)
    for isa in range(0, 5):
        if isa and not lib.mnv3_isa_available(isa):
            continue
        got, _ = c_layers(lib, str(dst), x.tobytes(), q.num_classes, isa=isa)
        assert got == want.tobytes(), f"kernel set {isa}: {got!r} != {want.tobytes()!r}"
