"""Build the compiled core, ``fastmatch._core``, and the fast paths: of the caches'
encoding, ``fastmatch._columns``, and of the readers, ``fastmatch.inputs._fastcatalog``
(catalog lines), ``fastmatch.inputs._fastcaches`` (ImageCache objects) and
``fastmatch.inputs._fastpods`` (pods and workloads).

Compiler directives are set once here for the whole build.  Set
``FASTMATCH_DEBUG=1`` in the environment to turn bounds, wraparound and
initialization checks back on, with libstdc++'s checked vector indexing, and
build without optimisation, when chasing a bug.
"""

from __future__ import annotations

import os
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTMATCH_DEBUG", "") not in ("", "0")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    # nonecheck stays off: the kernels are nogil methods of Core, whose self is never None.
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

# In debug builds libstdc++ checks every std::vector index too.
compile_args = ["-O0", "-g", "-D_GLIBCXX_ASSERTIONS"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        "fastmatch._core",
        ["src/fastmatch/_core.pyx"],
        # The parts _core.pyx includes: a change to any of them rebuilds it.
        depends=["src/fastmatch/_core.pxd", *sorted(glob("src/fastmatch/*.pxi"))],
        language="c++",
        include_dirs=[np.get_include()],
        extra_compile_args=[*compile_args, "-std=c++17", "-fopenmp"],
        extra_link_args=["-fopenmp"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    # The caches' columns for the core's bulk build (fastmatch.encoding's fast path).
    Extension(
        "fastmatch._columns",
        ["src/fastmatch/_columns.pyx"],
        language="c++",
        extra_compile_args=[*compile_args, "-std=c++17"],
    ),
    # The catalog reader's plain lines (fastmatch.inputs.catalog's fast path).
    Extension(
        "fastmatch.inputs._fastcatalog",
        ["src/fastmatch/inputs/_fastcatalog.pyx"],
        language="c++",
        extra_compile_args=[*compile_args, "-std=c++17"],
    ),
    # The plain ImageCache objects (fastmatch.inputs.caches's fast path).
    Extension(
        "fastmatch.inputs._fastcaches",
        ["src/fastmatch/inputs/_fastcaches.pyx"],
        extra_compile_args=compile_args,
    ),
    # The plain pods and workloads (fastmatch.inputs.pods's fast path).
    Extension(
        "fastmatch.inputs._fastpods",
        ["src/fastmatch/inputs/_fastpods.pyx"],
        extra_compile_args=compile_args,
    ),
]

setup(
    ext_modules=cythonize(
        extensions, compiler_directives=directives, include_path=["src"], annotate=DEBUG
    )
)
