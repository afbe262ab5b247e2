"""``python -m mnv3``: info, classify, run, validate and bench; errors as exit statuses."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mnv3

from conftest import run_module


def test_info():
    out = run_module("info", "builtin:small", "--layers").stdout
    assert "MobileNetV3-small (torchvision flavor)" in out
    assert "parameters:     2542856" in out
    assert "session arena" in out and "stem" in out and "head.fc1" in out
    q = run_module("info", "builtin:large:int8", "--resolution", "160").stdout
    assert "precision:      int8" in q and "quantization:   input int8" in q
    assert "MACs at 160x160" in q


def test_classify_prints_top_classes(tmp_path):
    ppm = tmp_path / "img.ppm"
    pixels = np.random.default_rng(40).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    ppm.write_bytes(b"P6\n40 30\n255\n" + pixels.tobytes())
    out = run_module("classify", "--model", "builtin:small", "--top", "3", str(ppm)).stdout
    lines = out.splitlines()
    assert lines[0] == f"{ppm} (40x30 ppm):" and len(lines) == 4
    with mnv3.Session(mnv3.Model.builtin(arch="small")) as s:
        want = s.classify(pixels, top=3)
    assert [int(line.split()[1]) for line in lines[1:]] == [c.index for c in want]


def test_classify_reports_each_bad_image(tmp_path):
    good = tmp_path / "good.pgm"
    good.write_bytes(b"P5\n8 8\n255\n" + bytes(64))
    r = run_module("classify", "--model", "builtin:small", str(tmp_path / "missing.png"),
                   str(good), check=False)
    assert r.returncode == 1
    assert "no such image file" in r.stderr and "good.pgm (8x8 pgm):" in r.stdout


def test_run_writes_logits_and_features(tmp_path):
    x = np.random.default_rng(41).standard_normal((2, 96, 96, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run_module("run", "--model", "builtin:small", "--input", str(tmp_path / "x.npy"),
               "--output", str(tmp_path / "y.npy"), "--features", str(tmp_path / "f.npy"),
               "--layout", "nhwc")
    y, f = np.load(tmp_path / "y.npy"), np.load(tmp_path / "f.npy")
    with mnv3.Session(mnv3.Model.builtin(arch="small"), batch=2, height=96, width=96,
                      layout="nhwc") as s:
        want_y, want_f = s.predict(x)
    assert np.array_equal(y, want_y) and np.array_equal(f, want_f)


def test_run_refuses_bad_arrays(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 224, 224, 3), np.float32))
    r = run_module("run", "--model", "builtin:small", "--input", str(tmp_path / "x.npy"),
                   "--output", str(tmp_path / "y.npy"), check=False)
    assert r.returncode == 1 and "did you mean --layout nhwc?" in r.stderr
    np.save(tmp_path / "i.npy", np.zeros((1, 3, 8, 8), np.int32))
    r = run_module("run", "--model", "builtin:small", "--input", str(tmp_path / "i.npy"),
                   "--output", str(tmp_path / "y.npy"), check=False)
    assert r.returncode == 1 and "unsupported element type int32" in r.stderr
    (tmp_path / "junk.npy").write_bytes(b"junk")
    r = run_module("run", "--model", "builtin:small", "--input", str(tmp_path / "junk.npy"),
                   "--output", str(tmp_path / "y.npy"), check=False)
    assert r.returncode == 1 and "not a .npy array" in r.stderr


def test_validate(tmp_path):
    model = mnv3.Model.builtin(arch="small", classes=10)
    model.save(tmp_path / "model.mnv3")
    x = np.random.default_rng(42).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with mnv3.Session(model, batch=2, height=64, width=64) as s:
        logits, features = s.predict(x)
    np.save(tmp_path / "input.npy", x)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "features.npy", features)
    (tmp_path / "meta.json").write_text(json.dumps({"layout": "nchw", "tolerance": 1e-4}))
    r = run_module("validate", "--golden", str(tmp_path), "--json")
    report = json.loads(r.stdout)
    assert report["pass"] and report["top1Agree"] == 2
    assert [x["name"] for x in report["results"]] == ["logits", "features"]
    np.save(tmp_path / "logits.npy", logits + 1)
    r = run_module("validate", "--golden", str(tmp_path), check=False)
    assert r.returncode == 1 and "validation FAILED" in r.stdout


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "relaxed"])
def test_bench_json(precision):
    r = run_module("bench", "--arch", "small", "--resolution", "96", "--runs", "3",
                   "--warmup", "1", "--precision", precision, "--json")
    report = json.loads(r.stdout)
    assert report["medianMs"] > 0 and report["minMs"] <= report["medianMs"] <= report["p90Ms"]
    assert report["resolution"] == 96 and report["threads"] == 1
    assert report["weights"] == {"fp32": "float32", "fp16": "float16", "int8": "int8",
                                 "relaxed": "float32"}[precision]


def test_bench_table():
    out = run_module("bench", "--arch", "small", "--resolution", "64", "--runs", "2").stdout
    assert "median ms" in out and "Session.run" in out


def test_errors_and_usage():
    r = run_module("info", "no-such.mnv3", check=False)
    assert r.returncode == 1 and r.stderr.startswith("Error: ") and "no-such.mnv3" in r.stderr
    r = run_module("info", "builtin:medium", check=False)
    assert r.returncode == 1 and "expected builtin:ARCH" in r.stderr
    r = run_module("bench", "--precision", "fp8", check=False)
    assert r.returncode == 2 and "invalid precision" in r.stderr
    r = run_module(check=False)
    assert r.returncode == 2
    r = run_module("--help")
    for command in ("info", "classify", "run", "validate", "bench"):
        assert command in r.stdout
