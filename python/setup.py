# SPDX-License-Identifier: MIT
"""Build the extension evshm._evshm against libevshm.

Where libevshm is found, first match wins:

1. EVSHM_BUILD_DIR=<a CMake build tree of evshm>: its libevshm.so, and
   evshm.h from the source tree it was configured from.  The module
   records that directory as its RUNPATH.
2. pkg-config evshm: an installed evshm (set PKG_CONFIG_PATH for a prefix
   of your own).  The module records the library directory as its RUNPATH
   unless the dynamic linker searches it anyway.

At run time the dynamic linker loads libevshm.so.0 from there (or from
LD_LIBRARY_PATH, which takes precedence); importing checks that its
version matches the header the module was built with.

    pip install --no-build-isolation ./python
"""
import os
import re
import shlex
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["module.c", "call.c", "opts.c", "ep.c", "io.c", "chan.c", "topic.c",
           "zcopy.c", "listener.c"]
DEFAULT_LIBDIRS = {"/lib", "/usr/lib", "/lib64", "/usr/lib64",
                   "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"}


def from_build_dir(build):
    cache = os.path.join(build, "CMakeCache.txt")
    try:
        with open(cache) as f:
            m = re.search(r"^evshm_SOURCE_DIR:STATIC=(.*)$", f.read(), re.M)
    except OSError as e:
        raise SystemExit(f"EVSHM_BUILD_DIR={build}: not a CMake build "
                         f"tree of evshm ({e})")
    if not m or not os.path.exists(os.path.join(build, "libevshm.so")):
        raise SystemExit(f"EVSHM_BUILD_DIR={build}: no evshm build there "
                         "(build it first: cmake --build)")
    build = os.path.abspath(build)
    return dict(include_dirs=[os.path.join(m.group(1), "include")],
                library_dirs=[build], runtime_library_dirs=[build])


def from_pkg_config():
    try:
        out = subprocess.run(["pkg-config", "--cflags", "--libs", "evshm"],
                             check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(
            "libevshm not found: install evshm (cmake --install) so that "
            "`pkg-config evshm` finds it (PKG_CONFIG_PATH for a prefix of "
            "your own), or set EVSHM_BUILD_DIR to a CMake build tree of "
            f"evshm.  ({e})")
    flags = shlex.split(out.stdout)
    libdirs = [f[2:] for f in flags if f.startswith("-L")]
    return dict(include_dirs=[f[2:] for f in flags if f.startswith("-I")],
                library_dirs=libdirs,
                runtime_library_dirs=[d for d in libdirs
                                      if os.path.normpath(d) not in DEFAULT_LIBDIRS])


def version():
    with open(os.path.join(HERE, "evshm", "__init__.py")) as f:
        return re.search(r'^__version__ = "(.*)"$', f.read(), re.M).group(1)


build_dir = os.environ.get("EVSHM_BUILD_DIR")
where = from_build_dir(build_dir) if build_dir else from_pkg_config()

setup(version=version(), packages=["evshm"], ext_modules=[Extension(
    "evshm._evshm",
    sources=[os.path.join("src", s) for s in SOURCES],
    libraries=["evshm"],
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wshadow",
                        "-Wstrict-prototypes", "-Wmissing-prototypes"],
    **where)])
