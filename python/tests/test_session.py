"""mnv3.Session: configuration, run, predict, quantized input, preprocessing, classify."""
from __future__ import annotations

import numpy as np
import pytest

import mnv3


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_session_attributes(small):
    s = mnv3.Session(small)
    assert s.model is small and s.threads == 1 and s.batch == 1
    assert s.layout == "nchw" and s.precision == "exact"
    assert s.input_size == (224, 224) and s.input_shape == (1, 3, 224, 224)
    assert s.output_shape == (1, 1000)
    assert s.isa == mnv3.best_isa() and s.arithmetic == "fp32"
    assert s.int8_kernels is None
    assert s.arena_bytes == s.arena_plan.total > 0
    n = mnv3.Session(small, threads=2, layout="NHWC", batch=3, height=96, width=128,
                     isa="scalar")
    assert n.threads == 2 and n.layout == "nhwc" and n.batch == 3
    assert n.input_shape == (3, 96, 128, 3) and n.isa == "scalar"
    assert "mnv3.Session" in repr(n)


def test_run_is_deterministic_and_batched(small):
    x = rand((2, 3, 224, 224))
    with mnv3.Session(small, batch=2) as s2, mnv3.Session(small) as s1:
        y = s2.run(x)
        assert y.shape == (2, 1000) and y.dtype == np.float32
        assert np.array_equal(s2.run(x), y)
        assert np.array_equal(s1.run(x[:1]), y[:1]) and np.array_equal(s1.run(x[1:]), y[1:])


def test_layouts_agree(small):
    x = rand((1, 3, 160, 160), 1)
    with mnv3.Session(small, height=160, width=160) as nchw, \
            mnv3.Session(small, height=160, width=160, layout="nhwc") as nhwc:
        a = nchw.run(x)
        b = nhwc.run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    assert np.allclose(a, b, rtol=0, atol=1e-4 * max(1.0, float(np.abs(a).max())))


def test_input_in_place_or_converted(small):
    """A C-contiguous float32 array is read in place; other layouts of memory are
    converted first and give the same logits; out= receives them without a new array."""
    x = rand((1, 3, 224, 224), 2)
    with mnv3.Session(small) as s:
        want = s.run(x)
        fortran = np.asfortranarray(x)
        assert not fortran.flags.c_contiguous
        assert np.array_equal(s.run(fortran), want)
        strided = np.zeros((1, 3, 224, 448), np.float32)
        strided[..., ::2] = x
        assert np.array_equal(s.run(strided[..., ::2]), want)
        big_endian = x.astype(">f4")
        assert np.array_equal(s.run(big_endian), want)
        assert np.array_equal(s.run(x.tolist()), want)  # array-like, as float32
        out = np.full((1, 1000), np.nan, np.float32)
        assert s.run(x, out=out) is out and np.array_equal(out, want)


def test_predict_features(small):
    x = rand((1, 3, 224, 224), 3)
    with mnv3.Session(small) as s:
        logits, features = s.predict(x)
        assert np.array_equal(logits, s.run(x))
    assert features.shape == (1, small.feature_dimension) and features.dtype == np.float32
    assert np.all(np.isfinite(features)) and np.any(features != 0)


def test_isa_scalar_agrees(small):
    x = rand((1, 3, 128, 128), 4)
    with mnv3.Session(small, height=128, width=128, isa="scalar") as ref, \
            mnv3.Session(small, height=128, width=128) as fast:
        a, b = ref.run(x), fast.run(x)
    assert np.max(np.abs(a - b)) <= 1e-4 * max(1.0, float(np.abs(a).max()))


def test_relaxed_precision(small):
    x = rand((1, 3, 224, 224), 6)
    with mnv3.Session(small, precision="relaxed") as s, mnv3.Session(small) as exact:
        assert s.precision == "relaxed" and s.arithmetic in ("fp32", "fp16", "bf16")
        a, b = s.run(x), exact.run(x)
        if s.arithmetic == "fp32":
            assert np.array_equal(a, b)
        else:
            assert np.max(np.abs(a - b)) < 0.05 * max(1.0, float(np.abs(b).max()))


def test_int8_builtin_runs_float_and_quantized_input(small_int8):
    q = small_int8.input_quantization
    x = np.random.default_rng(7).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    with mnv3.Session(small_int8, layout="nhwc") as s:
        assert s.int8_kernels is not None
        from_float = s.run(x)
        qx = q.quantize(x)
        assert qx.dtype == np.int8
        from_bytes = s.run(qx)  # int8 input is read as the model's quantized input
        assert np.array_equal(from_float, from_bytes)
        p = s.predict_quantized(qx)
        assert p.quantized_logits.dtype == small_int8.logits_quantization.dtype
        assert np.array_equal(p.logits, from_float)
        assert np.array_equal(p.quantization.dequantize(p.quantized_logits), p.logits)
        with pytest.raises(mnv3.InvalidArgumentError, match="takes int8 input, got uint8"):
            s.run(qx.view(np.uint8))


def test_preprocess_matches_c_formula(small):
    """Session.preprocess is mnv3_preprocess_image: at the input size no resize, so each
    value is (pixel / 255 - mean) / std with torchvision's ImageNet constants."""
    img = np.random.default_rng(8).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    with mnv3.Session(small) as s, mnv3.Session(small, layout="nhwc") as t:
        x = s.preprocess(img)
        assert x.shape == (3, 224, 224) and x.dtype == np.float32
        p = small.preprocess
        want = ((img.astype(np.float32) * np.float32(p.scale) - np.float32(p.mean)) /
                np.float32(p.std)).transpose(2, 0, 1)
        assert np.allclose(x, want, atol=1e-5)
        assert np.array_equal(t.preprocess(img), x.transpose(1, 2, 0))
        gray = img[:, :, 0]
        assert np.array_equal(s.preprocess(gray), s.preprocess(np.repeat(gray[..., None], 3, 2)))
        rgba = np.concatenate([img, np.zeros((224, 224, 1), np.uint8)], axis=2)
        assert np.array_equal(s.preprocess(rgba), x)  # alpha ignored


def test_preprocess_quantized(small_int8, small):
    img = np.random.default_rng(9).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    with mnv3.Session(small_int8) as s:
        qx = s.preprocess_quantized(img)
        assert qx.dtype == np.int8 and qx.shape == (3, 224, 224)
        assert np.array_equal(qx, small_int8.input_quantization.quantize(s.preprocess(img)))
    with mnv3.Session(small) as f, pytest.raises(mnv3.UnsupportedError):
        f.preprocess_quantized(img)


def test_classify_inputs_agree(small, tmp_path):
    PIL = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    img = np.random.default_rng(10).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    PIL.fromarray(img).save(path)
    with mnv3.Session(small) as s:
        r = s.classify(img, top=5)
        assert len(r) == 5 and all(isinstance(c, mnv3.Classification) for c in r)
        index, label, probability = r[0]
        assert label == f"class {index}" and 0 < probability <= 1
        assert [c.probability for c in r] == sorted((c.probability for c in r), reverse=True)
        assert s.classify(str(path)) == r
        assert s.classify(path) == r
        assert s.classify(path.read_bytes()) == r
        assert s.classify(PIL.open(path)) == r
        # the probabilities are the softmax of the logits
        x = s.preprocess(img)[None]
        logits = s.run(x)[0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        assert [c.index for c in r] == list(np.argsort(-probs, kind="stable")[:5])
        assert np.allclose([c.probability for c in r], probs[[c.index for c in r]], rtol=1e-4)
        assert len(s.classify(img, top=5000)) == 1000
    with mnv3.Session(small, batch=3) as b:  # padded batch, same answer
        assert [c.index for c in b.classify(img)] == [c.index for c in r]
    assert [c.index for c in small.classify(img)] == [c.index for c in r]


def test_layer_times(small):
    x = rand((1, 3, 224, 224), 11)
    with mnv3.Session(small, profile=True) as s:
        s.run(x)
        t = s.layer_times
        assert t.shape == (small.layer_count,) and t.dtype == np.uint64 and t.sum() > 0
    with mnv3.Session(small) as s:
        s.run(x)
        assert s.layer_times.sum() == 0


def test_closed_session(small):
    s = mnv3.Session(small)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(mnv3.InvalidArgumentError, match="closed"):
        s.run(rand((1, 3, 224, 224)))
    assert "closed" in repr(s)
