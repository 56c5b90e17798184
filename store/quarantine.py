"""Moving damaged store files aside: `<store>/quarantine/<utc time>/<same relative path>`.

A damaged file is never deleted (it may be the only copy of something a person can still
salvage), only moved out of every reader's glob, so views, scans and the planner see the
store as if it had never been written.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from mfs.store.health import QUARANTINE, Damage
from mfs.store.store import StoreWriter


def quarantine(writer: StoreWriter, damaged: list[Damage]) -> list[tuple[Damage, Path]]:
    """Move each damaged file into this repair's quarantine folder; returns where each went.

    Taking a `StoreWriter` proves the lock is held: no writer can be adding to a folder
    while a file leaves it.
    """
    root = writer.store.root
    folder = root / QUARANTINE / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    moved = []
    for damage in damaged:
        target = folder / damage.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(damage.path, target)  # same file system: a rename, never a copy
        moved.append((damage, target))
    return moved
