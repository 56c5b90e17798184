"""The columnar feature store: Parquet tables under one root, read through DuckDB views.

The layout and every table's columns are documented in `store/SCHEMA.md`: that file is the
contract between flows, extractors and analysis.
"""

from mfs.store.lock import StoreLocked
from mfs.store.store import Store, default_store_root

__all__ = ["Store", "StoreLocked", "default_store_root"]
