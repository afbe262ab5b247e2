"""Builds the mnv3 C library for the Python package (metadata: pyproject.toml).

Every ``.c`` file under ``csrc/`` is compiled with the system C compiler, as the Makefile
and Package.swift do (no copies): C99, the POSIX-threads backend, ``NDEBUG``, and no global
``-m`` flag (the x86 kernels carry their own target attributes and are chosen at run time;
32-bit ARM gets the Makefile's ``-mfpu=neon-vfpv4 -mfp16-format=ieee
-D_FILE_OFFSET_BITS=64``). The objects are linked into ``mnv3/libmnv3.so``, which the
package loads with ctypes.

Environment: ``CC`` (default: the compiler Python was built with, else ``cc``), ``CFLAGS``
and ``LDFLAGS`` are added after the library's own flags, and ``MNV3_BUILD_JOBS`` sets how
many files compile at once (default: the usable CPUs).
"""
from __future__ import annotations

import concurrent.futures
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from typing import List

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def version() -> str:
    with open(os.path.join(ROOT, "include", "mnv3.h"), encoding="utf-8") as f:
        m = re.search(r'#define MNV3_VERSION_STRING "([^"]+)"', f.read())
    if not m:
        raise RuntimeError("include/mnv3.h has no MNV3_VERSION_STRING")
    return m.group(1)


def library_sources() -> List[str]:
    """Every C source of the library, relative to the project (the layout of csrc/ may
    change; nothing here names a file)."""
    return sorted(os.path.relpath(p, ROOT).replace(os.sep, "/")
                  for p in glob.glob(os.path.join(ROOT, "csrc", "**", "*.c"), recursive=True))


def headers() -> List[str]:
    return (glob.glob(os.path.join(ROOT, "include", "*.h")) +
            glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True))


class BuildLibrary(build_ext):
    """Compiles the library's C sources in parallel and links them into a plain shared
    library (no Python C API: the package calls it through ctypes)."""

    def compiler_command(self) -> List[str]:
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        cmd = shlex.split(cc)
        if not cmd or shutil.which(cmd[0]) is None:
            fallback = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
            if fallback is None:
                raise RuntimeError(f"no C compiler found (tried {cc!r}, cc, gcc, clang); "
                                   "install gcc or set CC")
            cmd = [fallback]
        return cmd

    def machine(self, cc: List[str]) -> str:
        try:
            r = subprocess.run(cc + ["-dumpmachine"], capture_output=True, text=True,
                               check=True)
            return r.stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return sysconfig.get_platform()

    def jobs(self) -> int:
        env = os.environ.get("MNV3_BUILD_JOBS")
        if env:
            return max(1, int(env))
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:
            return max(1, os.cpu_count() or 1)

    def get_ext_filename(self, fullname: str) -> str:
        # mnv3._libmnv3 -> mnv3/libmnv3.so (a library, not an extension module)
        package, _, _ = fullname.rpartition(".")
        suffix = ".dylib" if sys.platform == "darwin" else ".so"
        return os.path.join(*package.split("."), "libmnv3" + suffix)

    def build_extension(self, ext: Extension) -> None:
        cc = self.compiler_command()
        machine = self.machine(cc)
        cflags = ["-std=c99", "-O2", "-fPIC", "-fvisibility=hidden", "-DNDEBUG",
                  "-DMNV3_THREADS_PTHREAD=1", "-pthread", "-Wall", "-Wextra", "-pedantic",
                  "-Iinclude", "-Icsrc"]
        if machine.startswith("arm"):  # 32-bit ARM: NEON needs the FPU named (Makefile)
            cflags += ["-mfpu=neon-vfpv4", "-mfp16-format=ieee", "-D_FILE_OFFSET_BITS=64"]
        cflags += shlex.split(os.environ.get("CFLAGS", ""))
        ldflags = shlex.split(os.environ.get("LDFLAGS", ""))

        out = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        objdir = os.path.join(self.build_temp, "mnv3-obj")
        stamp = os.path.join(objdir, "flags")
        flags_now = shlex.join(cc + cflags)
        # Objects are reused by a later build in the same folder only when the flags, the
        # source and every header are unchanged.
        try:
            with open(stamp, encoding="utf-8") as f:
                same_flags = f.read() == flags_now
        except OSError:
            same_flags = False
        newest_header = max((os.path.getmtime(h) for h in headers()), default=0.0)

        def compile_one(src: str) -> str:
            obj = os.path.join(objdir, os.path.splitext(src)[0] + ".o")
            if (same_flags and os.path.exists(obj) and
                    os.path.getmtime(obj) >= max(os.path.getmtime(src), newest_header)):
                return obj
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            cmd = cc + cflags + ["-c", src, "-o", obj]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"compiling {src} failed:\n{shlex.join(cmd)}\n"
                                   f"{r.stdout}{r.stderr}")
            if r.stderr.strip():
                print(r.stderr, end="", file=sys.stderr)
            return obj

        os.makedirs(objdir, exist_ok=True)
        sources = list(ext.sources)
        jobs = min(self.jobs(), len(sources))
        print(f"mnv3: compiling {len(sources)} C files with {shlex.join(cc)} ({machine}), "
              f"{jobs} at a time")
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            objects = list(pool.map(compile_one, sources))
        with open(stamp, "w", encoding="utf-8") as f:
            f.write(flags_now)
        cmd = cc + ["-shared", "-o", out] + objects + ["-pthread", "-lm"] + ldflags
        subprocess.run(cmd, cwd=ROOT, check=True)
        print(f"mnv3: linked {os.path.relpath(out, ROOT)}")


setup(
    version=version(),
    ext_modules=[Extension("mnv3._libmnv3", sources=library_sources())],
    cmdclass={"build_ext": BuildLibrary},
    options={"build": {"build_base": os.path.join("build", "python")}},
)
