"""fma518's C kernels (extractors/fma518/native.py); needs a C compiler at install. Everything else
is in pyproject.toml: the extension is here because setuptools still calls
`[tool.setuptools.ext-modules]` experimental and warns about it on every install."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "mfs.extractors.fma518._native", sources=["extractors/fma518/_native.c"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-psabi"])])
