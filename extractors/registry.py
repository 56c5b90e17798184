"""Names → extractor classes. Adding a model is one new module plus one line here.

Classes are imported lazily so that listing extractors never loads a model library.
"""

from __future__ import annotations

import importlib

from mfs.extractors.base import Extractor, ExtractorConfig

# name -> "module:ClassName"
EXTRACTORS: dict[str, str] = {
    "fma518": "mfs.extractors.fma518:Fma518",
    "musicnn-mtt": "mfs.extractors.musicnn:MusicnnMTT",
    "musicnn-msd": "mfs.extractors.musicnn:MusicnnMSD",
}


def extractor_class(name: str) -> type[Extractor]:
    """The class registered under `name`; a clear error lists the known names."""
    try:
        target = EXTRACTORS[name]
    except KeyError:
        known = ", ".join(sorted(EXTRACTORS))
        raise KeyError(f"unknown extractor {name!r}; known extractors: {known}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create(name: str, config: ExtractorConfig | None = None) -> Extractor:
    """A new, not yet loaded, extractor instance."""
    return extractor_class(name)(config)
