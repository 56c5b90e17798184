"""Names → extractor classes. Adding a model is one new module plus one line here.

Classes are imported lazily so that listing extractors never loads a model library.
Names are dynamic for HEAR API modules: `hear:<module>` (stored as `hear-<module>`) is a
class made for that module (`mfs.extractors.hear.extractor`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import types
import typing

from mfs.extractors.base import Extractor, ExtractorConfig

# name -> "module:ClassName"
EXTRACTORS: dict[str, str] = {
    "fma518": "mfs.extractors.fma518.extractor:Fma518",
    "musicnn-mtt": "mfs.extractors.musicnn.extractor:MusicnnMTT",
    "musicnn-msd": "mfs.extractors.musicnn.extractor:MusicnnMSD",
    "panns-cnn14": "mfs.extractors.panns.extractor:PannsCnn14",
    "vggish": "mfs.extractors.vggish.extractor:VGGish",
    "opensmile-egemaps": "mfs.extractors.opensmile.extractor:OpenSmileEgemaps",
    "opensmile-compare": "mfs.extractors.opensmile.extractor:OpenSmileCompare",
    "essentia-music": "mfs.extractors.essentia.extractor:EssentiaMusic",
    "encodec-24khz": "mfs.extractors.encodec.extractor:Encodec24kHz",
    "mert-v1-95m": "mfs.extractors.hubert.extractor:MertV1_95M",
    "mert-v1-330m": "mfs.extractors.hubert.extractor:MertV1_330M",
    "hubert-large": "mfs.extractors.hubert.extractor:HubertLarge",
    "wav2vec2-large": "mfs.extractors.hubert.extractor:Wav2Vec2Large",
    "ast": "mfs.extractors.ast.extractor:Ast",
    "clap-music": "mfs.extractors.clap.extractor:ClapMusic",
}

# How `mfs extractors` and an unknown name's error mention the dynamic HEAR names.
HEAR_NAMES = "hear:<module> (any HEAR 2021 API module on the path)"


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
        from mfs.extractors.hear.extractor import hear_class, hear_module

        if module := hear_module(name):
            return hear_class(module)
        known = ", ".join(sorted(known_extractors))
        raise KeyError(f"unknown extractor {name!r}; known extractors: {known}, "
                       f"{HEAR_NAMES}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def current_config_hash(name: str, config: dict) -> str | None:
    """The hash a stored `config` of extractor `name` gets from the code installed now (a
    stored hash that differs is a stale output); None when no extractor of that name can
    be loaded here (imported features, a plug-in no longer on the path)."""
    try:
        return extractor_class(name).hash_config(config)
    except (KeyError, ImportError, AttributeError):
        return None


def create(name: str, config: ExtractorConfig | None = None) -> Extractor:
    """A new, not yet loaded, extractor instance."""
    return extractor_class(name)(config)


def create_from_spec(spec: str) -> Extractor:
    """An extractor from `name` or `name:field=value[:field=value…]` (a non-default config).

    Fields are set on the class's `default_config()` (so `musicnn-msd:hop_seconds=1` keeps
    MSD's model). Each value is checked against its field's type annotation and every
    problem, the config's own `__post_init__` checks included, is one `ValueError` line
    that starts with the spec.
    """
    name, *assignments = spec.split(":")
    if name == "hear" and assignments:  # `hear:<module>[:field=value…]`
        name = f"hear:{assignments.pop(0)}"
    cls = extractor_class(name)
    default = cls.default_config()
    hints = typing.get_type_hints(type(default))
    known = [f.name for f in dataclasses.fields(default)]
    overrides = {}
    try:
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep or key not in known:
                raise ValueError(_not_a_field(name, assignment, default, known))
            overrides[key] = parse_value(key, hints[key], raw)
        return cls(dataclasses.replace(default, **overrides))
    except ValueError as error:
        raise ValueError(f"extractor spec {spec!r}: {error}") from None


def _not_a_field(name: str, assignment: str, default: ExtractorConfig, known: list[str]) -> str:
    """Why `assignment` sets no field; asking a whole-track or non-neural extractor
    (fma518) to keep windows says that it has none, not just which fields there are."""
    config = f"{type(default).__name__} ({', '.join(sorted(known))})"
    if assignment.partition("=")[0] == "keep_windows":
        return (f"{name} has no windows to keep: keep_windows is a field of windowed "
                f"neural extractors' configs only, not of {config}")
    return f"{assignment!r} is not field=value with a field of {config}"


def parse_value(field: str, hint: object, raw: str) -> object:
    """`raw` as a value of type `hint` (str, int, float, bool, None, tuples/lists of those
    and unions of them), or a ValueError saying what the field takes."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    for option in options:
        if (parsed := _as_type(option, raw, value)) is not _NO_MATCH:
            return parsed
    wanted = " or ".join(_describe(option) for option in options)
    raise ValueError(f"{field} must be {wanted}, got {raw!r}")


_NO_MATCH = object()
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
          type(None): "null"}


def _as_type(option: object, raw: str, value: object) -> object:
    """`value` (JSON-parsed `raw`) as `option`, or _NO_MATCH."""
    origin = typing.get_origin(option)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(option) if a is not Ellipsis]
        if not isinstance(value, list):
            return _NO_MATCH
        items = [_as_type(args[0], json.dumps(v), v) if args else v for v in value]
        return _NO_MATCH if _NO_MATCH in items else origin(items)
    if option is str:
        return raw
    if option is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if option is type(None):
        return None if value is None else _NO_MATCH
    if option is float and isinstance(value, int | float) and not isinstance(value, bool):
        return value  # `1` stays 1: as 1.0 it would hash apart from configs stored so far
    if option is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    return _NO_MATCH


def _describe(option: object) -> str:
    origin = typing.get_origin(option)
    if origin in (tuple, list):
        return "a JSON list"
    return _NAMES.get(option, getattr(option, "__name__", str(option)))
