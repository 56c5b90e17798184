"""Running a ctypes kernel (`_attention.c`) on torch's thread count: each thread takes a
contiguous range of the items (the (window, head) pairs).

Why threads of our own: the kernels are plain C called through ctypes, which releases the
GIL, so a small pool of Python threads runs them in parallel without a second OpenMP
runtime beside torch's; torch's own threads are idle while a kernel runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _workers(threads: int) -> ThreadPoolExecutor:
    """A pool of `threads` workers, kept for the next call of as many threads. Keyed by
    process too: a forked child (a Dask or multiprocessing worker) inherits the parent's
    pools without their threads, and would wait on them forever."""
    key = (os.getpid(), threads)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="mfs-kernel")
        return _pools[key]


def run_ranges(kernel: Callable[[int, int], int], items: int) -> list[int]:
    """`kernel(first, last)` over `items` split into `torch.get_num_threads()` (at most
    `items`) contiguous ranges, in parallel; the kernels' return codes."""
    threads = max(1, min(torch.get_num_threads(), items))
    if threads == 1:
        return [kernel(0, items)]
    cuts = [items * i // threads for i in range(threads + 1)]
    return list(_workers(threads).map(kernel, cuts[:-1], cuts[1:]))
