#!/usr/bin/env bash
# Every test: the C suite (kernels, planner, hostile files, whole networks against PyTorch
# and the real TFLite model when ../shared is present) and the Swift package's tests.
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
else
    echo "test.sh: swift not found; skipping the Swift package tests" >&2
fi
