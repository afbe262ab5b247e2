"""Shared fixtures of the mnv3 package tests.

They test the installed package (``pip install .``), never the sources beside them. Data
that is not always there is found as follows, and the tests that need it are skipped,
saying why, when it is absent:

- ``../shared`` (or ``MNV3_SHARED_DIR``): the real TFLite models, photos and TFLite's
  reference outputs;
- the Swift command-line tool ``mnv3`` (``MNV3_CLI``, else ``.build/release/mnv3`` from
  ``swift build -c release --product mnv3``);
- the ``.mnv3`` imports of the shared TFLite models (``MNV3_QMODEL_DIR``, else
  ``build/qmodels`` from ``make qmodels``, else imported here when the ``tflite`` package
  is installed).
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, Dict

import numpy as np
import pytest

import mnv3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("MNV3_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
QMODEL_DIR = os.environ.get("MNV3_QMODEL_DIR", os.path.join(ROOT, "build", "qmodels"))

UINT8_SMALL = "mobilenet_v3_small_1.0_224_uint8"
INT8_MODELS = ["mobilenet_v3_small_int8_seed1", "mobilenet_v3_large_int8_seed1"]
PHOTOS = ["chelsea", "coffee"]


def pytest_report_header(config: pytest.Config) -> str:
    try:
        lib = f"{mnv3.library_path()} ({mnv3.library_version()}, kernels "
        lib += f"{', '.join(mnv3.available_isas())})"
    except ImportError as e:
        lib = f"not loadable: {e}"
    return f"mnv3 package: {os.path.dirname(mnv3.__file__)}; C library: {lib}"


def shared_path(*parts: str) -> str:
    """A file of ../shared, or a skip naming what is missing."""
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        pytest.skip(f"{p} not found: the shared models and photos (../shared) are absent")
    return p


def cli_path() -> str:
    """The Swift ``mnv3`` command-line tool, or a skip saying how to build it."""
    env = os.environ.get("MNV3_CLI")
    candidates = [env] if env else [os.path.join(ROOT, ".build", "release", "mnv3")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.skip("the Swift mnv3 command-line tool is not built (swift build -c release "
                "--product mnv3, or set MNV3_CLI)")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"mnv3 {' '.join(args)} failed: {r.stderr}"
    return r


def run_module(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m mnv3 ARGS`` with this interpreter."""
    r = subprocess.run([sys.executable, "-m", "mnv3", *args], capture_output=True, text=True,
                       timeout=600)
    if check:
        assert r.returncode == 0, f"python -m mnv3 {' '.join(args)} failed: {r.stderr}"
    return r


def script(name: str) -> str:
    """A console command of the package: beside this interpreter (a virtual environment's
    bin/), else on PATH."""
    import shutil
    here = os.path.join(os.path.dirname(sys.executable), name)
    found = here if os.path.exists(here) else shutil.which(name)
    assert found, f"{name} is not installed beside {sys.executable} nor on PATH"
    return found


@pytest.fixture(scope="session")
def small() -> mnv3.Model:
    return mnv3.Model.builtin(arch="small")


@pytest.fixture(scope="session")
def small_int8() -> mnv3.Model:
    return mnv3.Model.builtin(arch="small", precision="int8")


@pytest.fixture(scope="session")
def qmodel_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """The .mnv3 file of a shared TFLite model, imported natively (int8)."""
    cache: Dict[str, str] = {}

    def get(name: str) -> str:
        if name in cache:
            return cache[name]
        tflite_file = shared_path("models", name + ".tflite")
        prebuilt = os.path.join(QMODEL_DIR, name + ".mnv3")
        if os.path.exists(prebuilt):
            cache[name] = prebuilt
            return prebuilt
        try:
            import tflite  # noqa: F401  (only whether it is installed)
        except ImportError:
            pytest.skip(f"{prebuilt} not found (make qmodels) and the tflite package, which "
                        "imports it here, is not installed (pip install 'mnv3[tflite]')")
        from mnv3.convert.import_tflite import import_tflite
        from mnv3.convert.modelfile import write_file
        out = str(tmp_path_factory.mktemp("qmodels") / (name + ".mnv3"))
        write_file(import_tflite(tflite_file), out)
        cache[name] = out
        return out
    return get


@pytest.fixture(scope="session")
def uint8_small(qmodel_file: Callable[[str], str]) -> mnv3.Model:
    """The real, ImageNet-trained uint8 MobileNetV3-Small (1001 classes)."""
    return mnv3.Model(qmodel_file(UINT8_SMALL))


def shared_labels() -> list:
    """The 1001 ImageNet labels of the shared uint8 model (``index:name`` lines)."""
    with open(shared_path("models", "imagenet_labels_1001.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n").split(":", 1)[-1] for line in f if line.strip()]


def reference(model: str, photo: str, kind: str) -> np.ndarray:
    return np.load(shared_path("reference", f"{model}__{photo}__{kind}.npy"))

