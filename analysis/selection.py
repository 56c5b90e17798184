"""Which stored features an analysis uses: `extractor[@config_hash][:column]` specs.

`column` is an embedding column (`tags_mean`), a glob over them (`tags_*`) or a layer
(`layer=7` picks every `<output>_l07_<stat>` column; `layer=4-12` or `layer=all` in `mfs bench`
is a sweep, one feature set per layer, `expand_layer_sweeps`). Without it, every embedding column of
the extractor is used. Without `@config_hash`, the extractor must have exactly one stored
config for the library, so a benchmark never silently mixes or picks between configs.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfs.analysis.sqlfiles import sql_text
from mfs.store.columns import parse_column
from mfs.store.health import split_damaged, warn_left_out
from mfs.store.schema import FEATURE_KEY_AND_PROVENANCE, FEATURE_NAMES_KEY
from mfs.store.sql import ident
from mfs.store.store import check_name
from mfs.store.views import view_name

if TYPE_CHECKING:
    import duckdb

    from mfs.store import Store


@dataclass(frozen=True)
class Column:
    """One embedding column of a resolved selection and the names of its dimensions."""

    name: str
    dim: int
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class Selection:
    """A resolved spec: one extractor config and the columns taken from it."""

    spec: str
    extractor: str
    config_hash: str
    columns: tuple[Column, ...]

    @property
    def view(self) -> str:
        return view_name(self.extractor)

    @property
    def dim(self) -> int:
        return sum(column.dim for column in self.columns)

    @property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.feature_names]

    def describe(self) -> dict:
        """JSON-ready identity of the selection, recorded with every result."""
        return {"spec": self.spec, "extractor": self.extractor, "config_hash": self.config_hash,
                "columns": {c.name: c.dim for c in self.columns}}


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """Split `extractor[@config_hash][:column]` into its three parts."""
    head, _, column = spec.strip().partition(":")
    extractor, _, config_hash = head.partition("@")
    check_name("extractor", extractor)
    return extractor, config_hash or None, column or None


def split_specs(text: str, separator: str = ",") -> list[str]:
    """`a,b:col` → ["a", "b:col"]; empty items are ignored."""
    return [part.strip() for part in text.split(separator) if part.strip()]


_SWEEP = re.compile(r"layer=(?:(\d+)-(\d+)|all)(?=$|\+)")


def expand_layer_sweeps(feature_sets: list[str], store: Store | None = None) -> list[str]:
    """Feature sets with a layer sweep `x:layer=A-B` (or `x:layer=all`: every layer the
    store holds for x) expanded into one set per layer, `x:layer=A` … `x:layer=B` (in a `+`
    join the other selections stay as they are), so one `mfs bench` compares every layer
    of a model on the same tracks and folds. `layer=all` needs `store`. One sweep per set:
    two would be their product, rarely what is meant, so it is refused."""
    expanded = []
    for text in feature_sets:
        sweeps = list(_SWEEP.finditer(text))
        if not sweeps:
            expanded.append(text)
            continue
        if len(sweeps) > 1:
            raise ValueError(f"--features {text!r} sweeps layers twice; sweep one "
                             "selection per feature set")
        sweep = sweeps[0]
        if sweep[1] is None:
            spec = text[:sweep.start()].rpartition("+")[2].rstrip(":")
            layers = stored_layers(store, spec) if store is not None else []
            if not layers:
                raise ValueError(f"--features {text!r}: {spec!r} has no stored layers "
                                 "(layer=all sweeps the layers of an extractor that has them)")
        else:
            first, last = int(sweep[1]), int(sweep[2])
            if last < first:
                raise ValueError(f"--features {text!r}: layer range {sweep[0]!r} is empty")
            layers = list(range(first, last + 1))
        expanded += [f"{text[:sweep.start()]}layer={layer}{text[sweep.end():]}"
                     for layer in layers]
    return list(dict.fromkeys(expanded))  # a layer also named on its own is run once


def stored_layers(store: Store, spec: str) -> list[int]:
    """The layer numbers stored for `extractor[@config_hash]`, from the Parquet footers of
    its config folders (every config when none is named; `resolve` later insists on one)."""
    extractor, config_hash, _ = parse_spec(spec)
    folders = sorted((store.features_dir / extractor).glob(config_hash or "*"))
    layers = {parse_column(column).layer for folder in folders
              for column in stored_layout(store, extractor, folder.name)[0]}
    return sorted(layers - {None})


def resolve(store: Store, con: duckdb.DuckDBPyConnection, spec: str,
            library: str | None = None) -> Selection:
    """Check `spec` against what the store holds for `library` and name every dimension."""
    extractor, config_hash, pattern = parse_spec(spec)
    if extractor not in store.extractors():
        known = ", ".join(store.extractors()) or "none yet"
        raise KeyError(f"no stored features for extractor {extractor!r} (stored: {known})")
    config_hash = _pick_config(con, extractor, config_hash, library)
    dims, names = stored_layout(store, extractor, config_hash)
    matching = [column for column in dims if _matches(column, pattern)]
    if not matching:
        raise KeyError(f"{extractor}@{config_hash} has no column matching {pattern!r} "
                       f"(columns: {', '.join(dims)})")
    columns = tuple(
        Column(column, dims[column],
               _dimension_names(extractor, column, dims[column], names.get(column)))
        for column in matching)
    return Selection(spec, extractor, config_hash, columns)


def resolve_all(store: Store, con: duckdb.DuckDBPyConnection, specs: list[str],
                library: str | None = None) -> list[Selection]:
    return [resolve(store, con, spec, library) for spec in specs]


def check_distinct_columns(selections: list[Selection]) -> None:
    """Refuse a feature set that would hold one stored column twice."""
    seen: set[tuple[str, str, str]] = set()
    for selection in selections:
        for column in selection.columns:
            key = (selection.extractor, selection.config_hash, column.name)
            if key in seen:
                raise ValueError(f"feature column {selection.extractor}:{column.name} is "
                                 "selected twice; list each column once")
            seen.add(key)


def stored_layout(store: Store, extractor: str, config_hash: str
                  ) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Embedding columns with their sizes, and per-dimension names by column (newest part
    wins), read from the Parquet footers of one config's parts (no data is read). Damaged
    parts are left out, as the store's views leave them out (see `store/health.py`).

    Sizes come from the fixed-size list types of SCHEMA.md; a column whose size differs
    between parts is refused, since no matrix could hold it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    provenance = set(FEATURE_KEY_AND_PROVENANCE.names)
    dims: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    parts = sorted((store.features_dir / extractor / config_hash).glob("*.parquet"))
    healthy, damaged = split_damaged(store.root, parts)
    warn_left_out(store.root, damaged)
    for part in healthy:
        part_schema = pq.read_schema(part)
        for field in part_schema:
            if field.name in provenance:
                continue
            if not pa.types.is_fixed_size_list(field.type):
                raise ValueError(f"{part}: column {field.name} is {field.type}, not the "
                                 "fixed-size float list the store schema requires")
            if dims.setdefault(field.name, field.type.list_size) != field.type.list_size:
                raise ValueError(f"{extractor}@{config_hash}:{field.name} mixes vector sizes "
                                 f"{dims[field.name]} and {field.type.list_size}; re-extract it")
        stored = (part_schema.metadata or {}).get(FEATURE_NAMES_KEY)
        names.update(json.loads(stored) if stored else {})
    return dims, names


def stored_configs(con: duckdb.DuckDBPyConnection, extractor: str,
                   library: str | None = None) -> dict[str, int]:
    """Config hashes of an extractor with their track counts (in `library` if given)."""
    sql = sql_text("config_counts").format(view=ident(view_name(extractor)))
    return dict(con.execute(sql, {"library": library}).fetchall())


def _pick_config(con: duckdb.DuckDBPyConnection, extractor: str, wanted: str | None,
                 library: str | None) -> str:
    counts = stored_configs(con, extractor, library)
    where = f" for library {library!r}" if library else ""
    if wanted is not None:
        if wanted not in counts:
            raise KeyError(f"extractor {extractor!r} has no config {wanted!r}{where} "
                           f"(stored: {', '.join(counts) or 'none'})")
        return wanted
    if not counts:
        raise KeyError(f"extractor {extractor!r} has no features{where}")
    if len(counts) > 1:
        listed = ", ".join(f"{h} ({n} tracks)" for h, n in counts.items())
        raise ValueError(f"extractor {extractor!r} has {len(counts)} configs{where}: {listed}; "
                         f"pick one as {extractor}@<config_hash>")
    return next(iter(counts))


def _matches(column: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    if pattern.startswith("layer="):
        number = pattern.removeprefix("layer=")
        if _SWEEP.fullmatch(pattern):
            raise ValueError(f"{pattern!r} is a layer sweep, which only mfs bench "
                             "--features expands; pick one layer here (layer=N)")
        if not number.isdigit():
            raise ValueError(f"layer must be a number, got {pattern!r}")
        return parse_column(column).layer == int(number)
    return fnmatch.fnmatchcase(column, pattern)


def _dimension_names(extractor: str, column: str, dim: int,
                     stored: list[str] | None) -> tuple[str, ...]:
    """`<extractor>.<column>.<name>` when the extractor named its dimensions (uniquely),
    else `<extractor>.<column>[<i>]`."""
    if stored is not None and len(stored) == dim and len(set(stored)) == dim:
        return tuple(f"{extractor}.{column}.{name}" for name in stored)
    return tuple(f"{extractor}.{column}[{i}]" for i in range(dim))
