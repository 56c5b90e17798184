"""ctypes binding of `_native.c`, fma518's C kernels (per-frame statistics, |X|², CQT,
zero crossings, summary statistics).

The extension module is compiled by `pip install` (setuptools `ext-modules` in
pyproject.toml); it holds plain C functions, called here through ctypes, which releases
the GIL while they run so that decoding threads go on beside them.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from mfs.extractors.fma518 import _native

_POINTER = ctypes.c_void_p
_INT = ctypes.c_int64
_FLOAT = ctypes.c_float

LIB = ctypes.CDLL(_native.__file__)
LIB.frame_stats.restype = _INT
LIB.frame_stats.argtypes = [
    _POINTER, _INT, _INT, _INT, _POINTER, _FLOAT,  # spectra, rows, first row, bins, freqs, lift
    _POINTER, _INT, _INT, _INT, _FLOAT,  # bands, n_bands, lo, hi, threshold
    _POINTER, _POINTER, _POINTER, _POINTER,  # power, stats, peak, valley
    _POINTER, _POINTER, _POINTER,  # peak_row, peak_bin, peak_values
]
LIB.power.restype = None
LIB.power.argtypes = [_POINTER, _INT, _FLOAT, _POINTER]
LIB.halve.restype = _INT
LIB.halve.argtypes = [_POINTER, _INT, _POINTER, _POINTER, _INT, _FLOAT]
LIB.zero_crossings.restype = _INT
LIB.zero_crossings.argtypes = [_POINTER, _INT, _INT, _INT, _INT, _INT, _FLOAT, _POINTER,
                               _POINTER]
LIB.cqt_octave.restype = _INT
LIB.cqt_octave.argtypes = [_POINTER, _INT, _INT, _INT, _POINTER, _INT, _INT, _FLOAT,
                           _POINTER]
LIB.moments.restype = None
LIB.moments.argtypes = [_POINTER, _INT, _INT, _POINTER]
MAX_HALVING_TAPS = 64  # HALVING_TAPS in _native.c: `halve` refuses more odd taps


def host_array(tensor: torch.Tensor) -> np.ndarray:
    """`tensor` as the kernels read it: float32, C-contiguous, in CPU memory (a view when
    it already is, a copy otherwise)."""
    return tensor.detach().cpu().float().contiguous().numpy()


def address(array: np.ndarray) -> int:
    """The data pointer of a C-contiguous array (the kernels take no strides)."""
    if not array.flags.c_contiguous:
        raise ValueError("native kernel: array must be C-contiguous")
    return array.ctypes.data
