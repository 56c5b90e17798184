"""Library kinds by name (`mfs scan --kind`). Adding a kind is one module plus one line here.

Like the extractor registry, classes are imported lazily: listing the kinds (the CLI's
help) never imports pandas or mutagen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from mfs.libraries.base import LibraryKind


@dataclass(frozen=True)
class Kind:
    """Where a kind's class lives, and which `mfs scan` options it takes: option name (as
    stored in the library's config) → the class's keyword argument."""

    target: str  # "module:Class"
    options: dict[str, str] = field(default_factory=dict)

    def load(self) -> type[LibraryKind]:
        module_name, class_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), class_name)


KINDS: dict[str, Kind] = {
    "gtzan": Kind("mfs.libraries.gtzan:GtzanLibrary", {"split_dir": "split_dir"}),
    "fma": Kind("mfs.libraries.fma:FmaLibrary", {"metadata": "metadata_dir"}),
    "folder": Kind("mfs.libraries.folder:FolderLibrary"),
}


def create(kind: str, root: Path, **options: Path | None) -> LibraryKind:
    """The scanner for `kind` over `root`; `options` are the `mfs scan` options (None: not
    given). A one-line ValueError for an unknown kind, or an option the kind does not take,
    a FileNotFoundError for a root that is not a folder."""
    spec = KINDS.get(kind)
    if spec is None:
        raise ValueError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    if extra := [name for name, value in options.items()
                 if value is not None and name not in spec.options]:
        takes = ", ".join(_flag(name) for name in spec.options) or "no options"
        raise ValueError(f"{_flag(extra[0])} does not apply to --kind {kind} "
                         f"(it takes {takes})")
    if not root.is_dir():
        raise FileNotFoundError(f"library folder {root} does not exist or is not a folder")
    keywords = {spec.options[name]: value for name, value in options.items()
                if value is not None}
    return spec.load()(root, **keywords)


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")
