"""The converters as installed: console commands, their numpy-only paths end to end (a
float model quantized to int8, a golden directory validated), and the --weights-dtype
spellings. PyTorch and TFLite paths are tested in tests/python, where those are installed."""
from __future__ import annotations

import importlib
import json
import subprocess
from importlib import metadata

import numpy as np
import pytest

import mnv3

from conftest import run_module, script

COMMANDS = {
    "mnv3-export-torchvision": "mnv3.convert.export_torchvision:main",
    "mnv3-import-tflite": "mnv3.convert.import_tflite:main",
    "mnv3-golden": "mnv3.convert.golden:main",
    "mnv3-quantize": "mnv3.convert.quantize:main",
}


def test_console_commands_are_installed():
    eps = metadata.entry_points()
    scripts = (eps.select(group="console_scripts") if hasattr(eps, "select")
               else eps.get("console_scripts", []))
    found = {ep.name: ep.value for ep in scripts if ep.name.startswith("mnv3-")}
    assert found == COMMANDS
    for name in COMMANDS:
        r = subprocess.run([script(name), "--help"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "usage:" in r.stdout


def test_converters_import_without_torch_or_tflite():
    for module in ("modelfile", "arch", "reference", "quant", "quantize", "golden",
                   "export_torchvision", "import_tflite"):
        importlib.import_module(f"mnv3.convert.{module}")


@pytest.mark.parametrize("module", ["export_torchvision", "import_tflite"])
def test_weights_dtype_spellings(module):
    m = importlib.import_module(f"mnv3.convert.{module}")
    base = (["--arch", "small", "--flavor", "torchvision", "-o", "x.mnv3"]
            if module == "export_torchvision" else ["m.tflite", "-o", "x.mnv3"])
    for spelling, canonical in [("fp16", "float16"), ("float16", "float16"),
                                ("fp32", "float32"), ("Float32", "float32")]:
        assert m.parser().parse_args(base + ["--weights-dtype", spelling]).weights_dtype == \
            canonical
    assert "float32,float16}" in m.parser().format_help()


def test_modelfile_reads_what_the_library_writes(small, tmp_path):
    from mnv3.convert import modelfile
    path = tmp_path / "small.mnv3"
    small.save(path)
    net = modelfile.read_file(str(path))
    assert net.params() == small.parameters and len(net.blocks) == small.block_count
    again = mnv3.Model(modelfile.to_bytes(net))  # and the library reads what it writes
    x = np.random.default_rng(49).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with mnv3.Session(small) as a, mnv3.Session(again) as b:
        assert np.array_equal(a.run(x), b.run(x))


def test_quantize_then_run(tmp_path):
    """mnv3-quantize (numpy only): a float model and .npy calibration inputs give an int8
    model that the library loads and runs, agreeing with the float model's top-1 on most
    held-out inputs."""
    float_model = mnv3.Model.builtin(arch="small", width=0.5, classes=10, seed=2)
    float_model.save(tmp_path / "f.mnv3")
    rng = np.random.default_rng(50)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(6):
        np.save(calib / f"{i}.npy", rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8))
    r = subprocess.run([script("mnv3-quantize"), str(tmp_path / "f.mnv3"),
                        "-o", str(tmp_path / "q.mnv3"), "--calib", str(calib), "--holdout", "2",
                        "--json", str(tmp_path / "report.json")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["calibration_inputs"] == 4
    q = mnv3.Model(tmp_path / "q.mnv3")
    assert q.quantized and q.classes == 10
    with mnv3.Session(q) as s:
        logits = s.run(s.preprocess(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))[None])
    assert logits.shape == (1, 10) and np.all(np.isfinite(logits))


def test_golden_then_validate(tmp_path):
    """mnv3-golden --reference numpy writes a golden directory that python -m mnv3
    validate accepts (the float64 numpy network against the C library)."""
    model = mnv3.Model.builtin(arch="small", width=0.5, classes=10, seed=4)
    model.save(tmp_path / "m.mnv3")
    golden = tmp_path / "golden"
    r = subprocess.run([script("mnv3-golden"), str(tmp_path / "m.mnv3"),
                        "--reference", "numpy", "--height", "64", "--width", "64",
                        "--batch", "2", "-o", str(golden)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (golden / "model.mnv3").read_bytes() == (tmp_path / "m.mnv3").read_bytes()
    report = json.loads(run_module("validate", "--golden", str(golden), "--json").stdout)
    assert report["pass"] and report["batch"] == 2
