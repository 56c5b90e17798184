"""Names → extractor classes. Adding a model is one new module plus one line here.

Classes are imported lazily so that listing extractors never loads a model library.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os

from mfs.extractors.base import Extractor, ExtractorConfig

# name -> "module:ClassName"
EXTRACTORS: dict[str, str] = {
    "fma518": "mfs.extractors.fma518:Fma518",
    "musicnn-mtt": "mfs.extractors.musicnn:MusicnnMTT",
    "musicnn-msd": "mfs.extractors.musicnn:MusicnnMSD",
}


def plugin_extractors() -> dict[str, str]:
    """Extractors of the user's own, from `$MFS_EXTRACTORS` (`name=module:Class,…`)."""
    plugins = {}
    for item in filter(None, os.environ.get("MFS_EXTRACTORS", "").split(",")):
        name, sep, target = item.strip().partition("=")
        if not sep or ":" not in target:
            raise ValueError(f"MFS_EXTRACTORS entry {item!r} is not name=module:Class")
        plugins[name] = target
    return plugins


def all_extractors() -> dict[str, str]:
    return {**EXTRACTORS, **plugin_extractors()}


def extractor_class(name: str) -> type[Extractor]:
    """The class registered under `name`; a clear error lists the known names."""
    known_extractors = all_extractors()
    try:
        target = known_extractors[name]
    except KeyError:
        known = ", ".join(sorted(known_extractors))
        raise KeyError(f"unknown extractor {name!r}; known extractors: {known}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create(name: str, config: ExtractorConfig | None = None) -> Extractor:
    """A new, not yet loaded, extractor instance."""
    return extractor_class(name)(config)


def create_from_spec(spec: str) -> Extractor:
    """An extractor from `name` or `name:field=value[:field=value…]` (a non-default config).

    Values are parsed as JSON where they can be (`window_seconds=2`, `layers=[7,10]`), else
    taken as strings, and must name fields of the extractor's config dataclass.
    """
    name, *assignments = spec.split(":")
    cls = extractor_class(name)
    overrides = {}
    known = {f.name for f in dataclasses.fields(cls.config_class)}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or key not in known:
            raise ValueError(
                f"extractor spec {spec!r}: {assignment!r} is not field=value with a field of "
                f"{cls.config_class.__name__} ({', '.join(sorted(known))})"
            )
        try:
            overrides[key] = json.loads(raw)
        except ValueError:
            overrides[key] = raw
    return cls(cls.config_class(**overrides))
