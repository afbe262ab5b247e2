#!/usr/bin/env bash
# Installs what building and testing mnv3 needs on Debian/Ubuntu: compilers and libraries
# through apt-get (when root or sudo is available; otherwise says what is missing and goes
# on), Python packages through pip. Safe to run repeatedly.
#
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --arm      also the ARM cross compilers and qemu-user
#   scripts/install-deps.sh --peers    also the peer engines for tools/bench_peers.py
#   scripts/install-deps.sh --mca      also llvm-mca (the newest LLVM the archive has) and the
#                                      ARM cross compilers, for `make mca`
set -u
cd "$(dirname "$0")/.."

want_arm=0
want_peers=0
want_mca=0
for arg in "$@"; do
    case "$arg" in
        --arm) want_arm=1 ;;
        --peers) want_peers=1 ;;
        --mca) want_mca=1 ;;
        *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
    esac
done

packages="make gcc libc6-dev pkg-config libpng-dev libjpeg62-turbo-dev libomp-dev python3 python3-pip"
# `python3 -m venv` (scripts/test.sh installs the Python package into build/venv) needs
# ensurepip, which Debian ships in python3-venv.
if ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    packages="$packages python3-venv"
fi
if [ "$want_arm" = 1 ]; then
    packages="$packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user"
fi
if [ "$want_mca" = 1 ]; then
    # Debian bookworm has llvm-19 besides its default llvm (14), whose models are older.
    llvm=llvm
    for v in 21 20 19 18 17 16 15; do
        if apt-cache show "llvm-$v" >/dev/null 2>&1; then llvm="llvm-$v"; break; fi
    done
    packages="$packages $llvm gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"
fi

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="none"; fi
    if [ "$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: cannot install system packages (need root or sudo, and apt-get); missing:$missing" >&2
    else
        echo "install-deps: apt-get install$missing"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing \
            || echo "install-deps: apt-get failed; the parts needing$missing will be skipped" >&2
    fi
fi

python=$(command -v python3 || true)
if [ -z "$python" ]; then
    echo "install-deps: python3 not found; PyTorch/TFLite reference tests will be skipped" >&2
    exit 0
fi
pip_install() {
    "$python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "Running pip as the 'root' user" || true
}
if ! "$python" -c "import numpy, torch, tflite" >/dev/null 2>&1; then
    echo "install-deps: pip install -r tools/requirements.txt"
    pip_install -r tools/requirements.txt
fi
# torchvision's model definitions are all the tools use; its compiled ops may not match
# the installed torch, so it is installed without dependencies (see tools/README.md).
if ! "$python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('torchvision') is None)" >/dev/null 2>&1; then
    pip_install --no-deps "torchvision==0.28.0"
fi
if [ "$want_peers" = 1 ]; then
    pip_install -r tools/requirements-peers.txt
fi
missing_py=$("$python" -c "
import importlib.util
print(' '.join(m for m in ('numpy', 'torch', 'torchvision', 'tflite', 'pytest') if importlib.util.find_spec(m) is None))")
if [ -n "$missing_py" ]; then
    echo "install-deps: Python packages still missing: $missing_py; the tests that need them say what they skip" >&2
fi
exit 0
