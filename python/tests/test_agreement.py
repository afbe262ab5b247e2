"""The package against the other implementations of the same computation:

- byte for byte the logits of the Swift command-line tool's ``mnv3 run`` on the same model
  and input (float32 NCHW and NHWC, uint8 pixels, float16 weights, int8 models);
- byte for byte TFLite's reference kernels on the real quantized models of ../shared
  (quantized logits of the uint8 MobileNetV3-Small and of the int8 Small and Large);
- the top-5 of ``mnv3 classify`` on the shared photos, with the real uint8 Small.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import mnv3

from conftest import (INT8_MODELS, PHOTOS, UINT8_SMALL, reference, run_cli, run_module,
                      shared_labels, shared_path)


def cli_logits(tmp_path, model: str, x: np.ndarray, *extra: str) -> np.ndarray:
    src, dst = tmp_path / "cli_in.npy", tmp_path / "cli_out.npy"
    np.save(src, x)
    run_cli("run", "--model", model, "--input", str(src), "--output", str(dst), *extra)
    return np.load(dst)


def session_logits(model: mnv3.Model, x: np.ndarray, layout: str = "nchw") -> np.ndarray:
    """What `mnv3 run` computes, through the Python API: one image at a time."""
    h, w = (x.shape[2], x.shape[3]) if layout == "nchw" else (x.shape[1], x.shape[2])
    with mnv3.Session(model, layout=layout, height=h, width=w) as s:
        return np.concatenate([s.run(x[i:i + 1]) for i in range(x.shape[0])])


@pytest.mark.parametrize("spec", ["builtin:small", "builtin:large", "builtin:small:0.75",
                                  "builtin:small:int8", "builtin:large:int8"])
def test_run_matches_cli_byte_for_byte(tmp_path, spec):
    parts = spec.split(":")
    model = mnv3.Model.builtin(arch=parts[1], width=float(parts[2]) if len(parts) > 2 and
                               parts[2] != "int8" else 1.0,
                               precision="int8" if parts[-1] == "int8" else "fp32")
    x = np.random.default_rng(30).standard_normal((2, 3, 224, 224)).astype(np.float32)
    want = cli_logits(tmp_path, spec, x)
    got = session_logits(model, x)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_nhwc_and_other_sizes_match_cli(tmp_path, small):
    x = np.random.default_rng(31).standard_normal((1, 160, 192, 3)).astype(np.float32)
    want = cli_logits(tmp_path, "builtin:small", x, "--layout", "nhwc")
    assert session_logits(small, x, "nhwc").tobytes() == want.tobytes()


def test_uint8_pixels_match_cli(tmp_path, small):
    """uint8 [N,H,W,3] input: `mnv3 run` preprocesses it (mnv3_preprocess_image), as
    Session.preprocess does."""
    pixels = np.random.default_rng(32).integers(0, 256, (2, 300, 451, 3), dtype=np.uint8)
    want = cli_logits(tmp_path, "builtin:small", pixels)
    with mnv3.Session(small) as s:
        got = np.concatenate([s.run(s.preprocess(p)[None]) for p in pixels])
    assert got.tobytes() == want.tobytes()


def test_float16_weights_match_cli(tmp_path, small):
    half = small.converted(weights="float16")
    path = tmp_path / "half.mnv3"
    half.save(path)
    x = np.random.default_rng(33).standard_normal((1, 3, 224, 224)).astype(np.float32)
    want = cli_logits(tmp_path, str(path), x)
    assert session_logits(mnv3.Model(path), x).tobytes() == want.tobytes()
    assert session_logits(half, x).tobytes() == want.tobytes()


def test_python_m_run_matches_cli(tmp_path):
    x = np.random.default_rng(34).standard_normal((2, 3, 224, 224)).astype(np.float32)
    want = cli_logits(tmp_path, "builtin:small:int8", x)
    src, dst, feats = tmp_path / "x.npy", tmp_path / "py.npy", tmp_path / "f.npy"
    np.save(src, x)
    run_module("run", "--model", "builtin:small:int8", "--input", str(src), "--output", str(dst),
               "--features", str(feats))
    assert np.load(dst).tobytes() == want.tobytes()
    assert np.load(feats).shape == (2, 576)


@pytest.mark.parametrize("photo", PHOTOS)
def test_shared_uint8_small_matches_cli(tmp_path, qmodel_file, photo):
    path = qmodel_file(UINT8_SMALL)
    x = np.load(shared_path("images", f"{photo}_224_nhwc_uint8.npy"))
    want = cli_logits(tmp_path, path, x)
    with mnv3.Session(mnv3.Model(path)) as s:
        got = s.run(s.preprocess(x[0])[None])
    assert got.tobytes() == want.tobytes()


# ------------------------------------------------------------------------------------------
# TFLite's reference kernels (../shared/reference)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [UINT8_SMALL] + INT8_MODELS)
@pytest.mark.parametrize("photo", PHOTOS)
def test_quantized_logits_equal_tflite_reference(qmodel_file, name, photo):
    model = mnv3.Model(qmodel_file(name))
    x = reference(name, photo, "input")
    want = reference(name, photo, "ref_logits")
    assert model.quantized and x.dtype == model.input_quantization.dtype
    with mnv3.Session(model, layout="nhwc") as s:
        p = s.predict_quantized(x)
        assert p.quantized_logits.dtype == want.dtype
        assert p.quantized_logits.tobytes() == want.tobytes()
        # the same input as floats, quantized inside, gives the same logits
        floats = model.input_quantization.dequantize(x)
        assert np.array_equal(s.run(floats), p.logits)
        assert np.array_equal(s.run(x), p.logits)


@pytest.mark.parametrize("photo", PHOTOS)
def test_shared_photo_preprocessing_gives_the_reference_input(qmodel_file, photo):
    """The uint8 model's input bytes are the pixels themselves (scale 1/127 around 128):
    preprocess_quantized of the 224x224 photo is the reference input byte for byte."""
    model = mnv3.Model(qmodel_file(UINT8_SMALL))
    x = np.load(shared_path("images", f"{photo}_224_nhwc_uint8.npy"))
    with mnv3.Session(model, layout="nhwc") as s:
        q = s.preprocess_quantized(x[0])
    assert q.tobytes() == reference(UINT8_SMALL, photo, "input").tobytes()


# ------------------------------------------------------------------------------------------
# classify: the top-5 of the command-line tool
# ------------------------------------------------------------------------------------------

LINE = re.compile(r"^\s+(\d\.\d{4})\s+(\d+)\s+(.*)$")


def parse_classify(text: str):
    return [(int(m.group(2)), m.group(3), float(m.group(1)))
            for m in map(LINE.match, text.splitlines()) if m]


@pytest.mark.parametrize("photo", PHOTOS)
def test_classify_top5_equals_cli(qmodel_file, photo):
    path = qmodel_file(UINT8_SMALL)
    image = shared_path("images", f"{photo}.png")
    cli = parse_classify(run_cli("classify", "--model", path, "--top", "5", image).stdout)
    assert len(cli) == 5
    model = mnv3.Model(path)
    with mnv3.Session(model) as s:
        got = s.classify(image, top=5)
    assert [c.index for c in got] == [c[0] for c in cli]
    assert [c.label for c in got] == [c[1] for c in cli]
    assert [round(c.probability, 4) for c in got] == [c[2] for c in cli]
    # and python -m mnv3 classify prints the same lines
    py = run_module("classify", "--model", path, "--top", "5", image).stdout
    assert py == run_cli("classify", "--model", path, "--top", "5", image).stdout


def test_classify_real_photos(uint8_small):
    """The real Small recognises the photos (TFLite's top-1: 286 Egyptian cat, 968
    espresso; 1001 classes, 0 is background)."""
    labels = shared_labels()
    with mnv3.Session(uint8_small) as s:
        cat = s.classify(shared_path("images", "chelsea.png"), top=3)
        cup = s.classify(shared_path("images", "coffee.png"), top=3)
    assert cat[0].index == 286 and labels[286] == "Egyptian cat"
    assert {c.index for c in cat} <= {281, 282, 283, 285, 286, 287}
    assert cup[0].index == 968 and labels[968] == "espresso"


@pytest.mark.parametrize("variant", ["420", "444", "progressive", "gray", "large"])
def test_jpeg_classify_equals_cli(tmp_path, qmodel_file, variant):
    """JPEG files (decoded by Pillow here, by libjpeg in the Swift tool) classify alike:
    4:2:0 and 4:4:4 chroma, progressive, gray, and one larger than the input."""
    PIL = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    path = qmodel_file(UINT8_SMALL)
    im = PIL.open(shared_path("images", "chelsea.png")).convert("RGB")
    out = tmp_path / f"chelsea_{variant}.jpg"
    if variant == "420":
        im.save(out, quality=85)
    elif variant == "444":
        im.save(out, quality=90, subsampling=0)
    elif variant == "progressive":
        im.save(out, quality=80, progressive=True)
    elif variant == "gray":
        im.convert("L").save(out, quality=90)
    else:
        im.resize((1000, 700)).save(out, quality=75)
    args = ("classify", "--model", path, "--top", "10", str(out))
    assert run_module(*args).stdout == run_cli(*args).stdout


@pytest.mark.parametrize("variant", ["gray", "rgba", "palette", "gray_alpha", "gray16",
                                     "ppm_maxval_1000", "pgm_maxval_100"])
def test_other_images_classify_equal_cli(tmp_path, qmodel_file, variant):
    """PNG colour types and bit depths, and PPM/PGM with other maximum values, decode to
    the pixels the Swift tool decodes (gray replicated, alpha dropped, palettes expanded,
    16-bit samples rescaled)."""
    PIL = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    path = qmodel_file(UINT8_SMALL)
    rgb = np.asarray(PIL.open(shared_path("images", "chelsea.png")).convert("RGB"))
    gray = np.asarray(PIL.fromarray(rgb).convert("L"))
    out = tmp_path / f"chelsea_{variant}.{'ppm' if variant.startswith('pp') else 'png'}"
    if variant == "gray":
        PIL.fromarray(gray).save(out)
    elif variant == "rgba":
        alpha = np.linspace(0, 255, rgb.shape[1]).astype(np.uint8)[None, :, None]
        PIL.fromarray(np.concatenate([rgb, np.broadcast_to(alpha, rgb.shape[:2] + (1,))],
                                     axis=2)).save(out)
    elif variant == "palette":
        PIL.fromarray(rgb).quantize(64).save(out)
    elif variant == "gray_alpha":
        PIL.fromarray(np.stack([gray, 255 - gray], axis=2)).save(out)  # LA
    elif variant == "gray16":
        g16 = (gray.astype(np.uint16) * 257 + np.arange(gray.size).reshape(gray.shape) % 251)
        PIL.fromarray(g16.astype(np.uint16)).save(out)
    elif variant == "ppm_maxval_1000":
        v = (rgb.astype(np.uint32) * 1000 // 255).astype(">u2")
        out.write_bytes(b"P6\n%d %d\n1000\n" % (rgb.shape[1], rgb.shape[0]) + v.tobytes())
    else:
        out = tmp_path / "chelsea.pgm"
        v = (gray.astype(np.uint32) * 100 // 255).astype(np.uint8)
        out.write_bytes(b"P5\n%d %d\n100\n" % (gray.shape[1], gray.shape[0]) + v.tobytes())
    args = ("classify", "--model", path, "--top", "10", str(out))
    assert run_module(*args).stdout == run_cli(*args).stdout
