"""mnv3.Model: built-in networks, attributes, serialisation, float16 weights."""
from __future__ import annotations

import os

import numpy as np
import pytest

import mnv3


def test_version_and_library():
    assert mnv3.__version__ == mnv3.library_version()
    with open(os.path.join(os.path.dirname(mnv3.__file__), "py.typed")):
        pass  # the package is marked as typed
    assert os.path.isfile(mnv3.library_path())
    isas = mnv3.available_isas()
    assert isas[0] == "scalar" and mnv3.best_isa() in isas
    assert mnv3.isa_available("auto") and mnv3.isa_available("scalar")
    with pytest.raises(mnv3.InvalidArgumentError, match="unknown kernel set"):
        mnv3.isa_available("sse9")


@pytest.mark.parametrize("arch,params,feature_dim", [("large", 5_483_032, 960),
                                                     ("small", 2_542_856, 576)])
def test_builtin_attributes(arch, params, feature_dim):
    m = mnv3.Model.builtin(arch=arch)
    # torchvision's parameter counts of mobilenet_v3_large / mobilenet_v3_small
    assert m.arch == arch and m.flavor == "torchvision"
    assert m.parameters == params
    assert m.classes == 1000 and m.feature_dimension == feature_dim
    assert m.input_size == (224, 224) and m.input_size.height == 224
    assert not m.quantized and m.precision == "fp32" and m.weight_type == "float32"
    assert m.labels == [] and not m.has_labels and m.label(7) == "class 7"
    assert m.input_quantization is None and m.logits_quantization is None
    assert m.input_channels == 3
    assert m.preprocess.channel_order == "rgb" and m.preprocess.size == (224, 224)
    assert m.block_count == (15 if arch == "large" else 11)
    layers = m.layers()
    assert len(layers) == m.layer_count and layers[0].name == "stem"
    assert sum(layer.macs for layer in layers) == m.macs()
    assert m.macs(160) < m.macs() < m.macs((320, 320))
    assert "mnv3.Model" in repr(m)


def test_builtin_options():
    a = mnv3.Model.builtin(arch="small", width=0.75, classes=10, seed=3)
    assert a.classes == 10 and a.parameters < 2_542_856
    same = mnv3.Model.builtin(arch="small", width=0.75, classes=10, seed=3)
    other = mnv3.Model.builtin(arch="small", width=0.75, classes=10, seed=4)
    assert a.to_bytes() == same.to_bytes() != other.to_bytes()
    assert mnv3.Model.builtin(arch="small", flavor="tflite").flavor == "tflite"
    q = mnv3.Model.builtin(arch="small", precision="int8")
    assert q.quantized and q.precision == "int8" and q.weight_type == "int8"
    assert q.input_quantization.type == "int8" and q.input_quantization.scale > 0
    assert q.logits_quantization is not None
    assert mnv3.Model.builtin(arch="small", precision="float32").precision == "fp32"


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="medium"), "unknown architecture"),
    (dict(width=0.0), "width"),
    (dict(width=5.0), "width"),
    (dict(width="1"), "width must be a number"),
    (dict(classes=0), "classes must be in"),
    (dict(classes=1.5), "classes must be an integer"),
    (dict(seed=-1), "seed must be in"),
    (dict(precision="fp8"), "unknown precision"),
    (dict(flavor="keras"), "unknown flavor"),
])
def test_builtin_bad_arguments(kwargs, match):
    with pytest.raises(mnv3.InvalidArgumentError, match=match):
        mnv3.Model.builtin(**{"arch": "small", **kwargs})


def test_bytes_and_file_round_trip(small, tmp_path):
    data = small.to_bytes()
    assert data[:8] == b"MNV3\0MDL"
    again = mnv3.Model(data)
    assert again.to_bytes() == data
    assert mnv3.Model(bytearray(data)).parameters == small.parameters
    assert mnv3.Model(memoryview(data)).parameters == small.parameters
    path = tmp_path / "small.mnv3"
    small.save(path)
    assert path.read_bytes() == data
    assert mnv3.Model(str(path)).to_bytes() == data
    assert mnv3.Model(path).to_bytes() == data  # os.PathLike


def test_float16_weights(small):
    half = small.converted(weights="float16")
    assert half.weight_type == "float16" and small.weight_type == "float32"
    assert half.parameters == small.parameters and half.stored_values == small.stored_values
    assert half.stored_bytes < 0.52 * small.stored_bytes
    assert len(half.to_bytes()) < 0.55 * len(small.to_bytes())
    assert mnv3.Model(half.to_bytes()).weight_type == "float16"
    assert small.converted("fp16").to_bytes() == half.to_bytes()  # the CLI's spelling
    # float16 -> float32 widens exactly: converting back is the rounded float32 model
    back = half.converted("float32")
    assert back.weight_type == "float32"
    assert back.converted("float16").to_bytes() == half.to_bytes()
    # same network, nearly the same logits, float32 arithmetic
    x = np.random.default_rng(5).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with mnv3.Session(small) as s32, mnv3.Session(half) as s16:
        assert s16.arithmetic == "fp32"
        a, b = s32.run(x), s16.run(x)
    assert not np.array_equal(a, b)  # the weights were rounded
    assert np.max(np.abs(a - b)) < 0.05 * max(1.0, float(np.max(np.abs(a))))
    assert np.argmax(a) == np.argmax(b)


def test_float16_of_quantized_model_is_unsupported(small_int8):
    with pytest.raises(mnv3.UnsupportedError) as e:
        small_int8.converted("float16")
    assert e.value.status == mnv3.Status.UNSUPPORTED and e.value.message


def test_converted_bad_weight_type(small):
    with pytest.raises(mnv3.InvalidArgumentError, match="unknown weight type"):
        small.converted("bfloat16")


def test_arena_plan_matches_session(small):
    plan = small.arena_plan(threads=2, batch=2, height=160, width=192)
    with mnv3.Session(small, threads=2, batch=2, height=160, width=192) as s:
        assert s.arena_plan == plan
        assert s.arena_bytes == plan.total > plan.activations >= plan.activation_lower_bound > 0
    assert plan.model_weights > 0 and plan.isa in mnv3.available_isas()


def test_quantization_arithmetic():
    q = mnv3.Quantization("int8", 0.01, -1)
    got = q.quantize([-2.0, -0.01, 0.0, 0.3, 9.0, 0.005, -0.005, float("nan")])
    assert got.dtype == np.int8
    # half away from zero; clamped; NaN is the lowest value
    assert got.tolist() == [-128, -2, -1, 29, 127, 0, -2, -128]
    assert q.dequantize(np.array([-1, 29], np.int8)).tolist() == [0.0, pytest.approx(0.3)]
    u = mnv3.Quantization("uint8", 1 / 127, 128)
    assert u.quantize([-1.0, 0.0, 1.0]).tolist() == [1, 128, 255]
    assert u.dtype == np.uint8 and str(u) == "uint8, scale 0.00787402, zero point 128"


def test_model_from_wrong_type():
    with pytest.raises(TypeError):
        mnv3.Model(42)  # type: ignore[arg-type]
