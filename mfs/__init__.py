"""music feature store: offline batch embeddings on a Parquet + DuckDB feature store.

From Python (a notebook): `from mfs import open_store`; see `mfs.api`. The name is looked
up lazily, so `import mfs` (which every `mfs` command does) stays as cheap as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mfs.api import StoreHandle, open_store

__all__ = ["StoreHandle", "open_store"]


def __getattr__(name: str):
    if name in __all__:
        from mfs import api

        return getattr(api, name)
    raise AttributeError(f"module 'mfs' has no attribute {name!r}")
