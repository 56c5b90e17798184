"""The C kernels: fma518's (extractors/fma518/native.py), and the transformers' bfloat16
attention (extractors/hf/cpu_attention.py). They need a C compiler at install. Everything
else is in pyproject.toml: the extensions are here because setuptools still calls
`[tool.setuptools.ext-modules]` experimental and warns about it on every install."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("mfs.extractors.fma518._native", sources=["extractors/fma518/_native.c"],
              extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-psabi"]),
    # Its AVX-512 functions carry their own target attributes: the library builds for any
    # x86-64 (or other) CPU and checks at run time whether this one has AVX-512 BF16.
    Extension("mfs.extractors.hf._attention", sources=["extractors/hf/_attention.c"],
              extra_compile_args=["-O3", "-Wno-psabi"]),
])
