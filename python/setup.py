"""Builds attnscale._ext for `pip install ./python`: python/attnscale/_ext.c compiled with
every library source of ../src into one extension module (the Makefile's `make python` does
the same into build/python). The version is ATS_VERSION of ../include/attnscale.h."""

import glob
import os
import re
import shlex
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INCLUDE = os.path.join(ROOT, "include")
SRC = os.path.join(ROOT, "src")
if not os.path.isfile(os.path.join(INCLUDE, "attnscale.h")):
    raise SystemExit("setup.py: build from the attnscale repository (pip install ./python): "
                     f"{INCLUDE}/attnscale.h not found")


def version():
    with open(os.path.join(INCLUDE, "attnscale.h")) as f:
        return re.search(r'#define ATS_VERSION "([^"]+)"', f.read()).group(1)


def pkg_includes(*names):
    dirs = []
    for name in names:
        try:
            out = subprocess.run(["pkg-config", "--cflags-only-I", name], capture_output=True,
                                 text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        dirs += [flag[2:] for flag in shlex.split(out) if flag.startswith("-I")]
    return dirs


def git_hash():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


FLAGS = ["-std=c11", "-O2", "-fopenmp"]


class BuildExt(build_ext):
    """Writes the generated buildinfo.h (git hash, flags) that src/core/build_info.c needs."""

    def build_extensions(self):
        gen = os.path.join(self.build_temp, "gen")
        os.makedirs(gen, exist_ok=True)
        with open(os.path.join(gen, "buildinfo.h"), "w") as f:
            f.write(f'#define ATS_GIT_HASH "{git_hash()}"\n')
            f.write(f'#define ATS_BUILD_FLAGS "{self.compiler.compiler_so[0]} {" ".join(FLAGS)} (pip)"\n')
        # The library itself, compiled here (setuptools refuses sources outside python/).
        lib = sorted(glob.glob(os.path.join(SRC, "*", "*.c")) +
                     glob.glob(os.path.join(SRC, "*", "*", "*.c")))
        for ext in self.extensions:
            objects = self.compiler.compile(
                lib, output_dir=os.path.join(self.build_temp, "lib"), macros=ext.define_macros,
                include_dirs=ext.include_dirs + [gen], extra_postargs=FLAGS)
            ext.extra_objects = objects + ext.extra_objects
        super().build_extensions()


setup(
    version=version(),
    ext_modules=[Extension(
        "attnscale._ext",
        sources=[os.path.join("attnscale", "_ext.c")],
        include_dirs=[INCLUDE, SRC] + pkg_includes("openblas", "cairo"),
        define_macros=[("_POSIX_C_SOURCE", "200809L")],
        extra_compile_args=FLAGS,
        extra_link_args=["-fopenmp", "-Wl,--exclude-libs,ALL"],
        libraries=["cairo", "cjson", "openblas", "m"],
    )],
    cmdclass={"build_ext": BuildExt},
)
