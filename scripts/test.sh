#!/usr/bin/env bash
# Every test: the C suite (kernels, planner, hostile files, whole networks against PyTorch
# and the real TFLite model when ../shared is present), the Python tools' tests, the Swift
# package's tests, and the Python package's tests after `pip install .` into a fresh virtual
# environment (build/venv), against the release `mnv3` CLI and ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" all
make test
if [ -f tests/python/test_tools.py ] && python3 -c "import pytest" >/dev/null 2>&1; then
    python3 -m pytest -q tests/python
fi
if command -v swift >/dev/null 2>&1; then
    swift build --build-tests
    # The Swift tests are XCTest cases; Swift Testing would only add an empty run.
    swift test --skip-build --disable-swift-testing
    # The package tests compare the Python API with the release CLI byte for byte.
    swift build -c release --product mnv3
    export MNV3_CLI="$PWD/.build/release/mnv3"
else
    echo "test.sh: swift not found; skipping the Swift package tests" >&2
fi

# The Python package, as a user installs it: a fresh virtual environment, `pip install .`
# from this checkout (the C library compiled anew), then its tests. The imported TFLite
# models of `make test` (build/qmodels) are reused when present.
if python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" >/dev/null 2>&1; then
    rm -rf build/python
    python3 -m venv --clear build/venv
    build/venv/bin/python -m pip install -q --disable-pip-version-check ".[test]"
    build/venv/bin/python -m pytest -q -p no:cacheprovider python/tests
else
    echo "test.sh: python3 -m venv is not available (apt-get install python3-venv); skipping" \
        "the Python package tests" >&2
fi
