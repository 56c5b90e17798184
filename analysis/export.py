"""Export a training table (features + genre, split and artist per track) for use
outside the store: Parquet, CSV or NumPy `.npz`, chosen by the output's suffix.

`genre` is the population's label (`analysis/population.py`, the same filters as
`mfs bench`), `genres` every genre of the track (FMA's `genres_all`; a list in Parquet,
JSON text in CSV and .npz) for multi-label work.

The split column is the dataset's own split (`official`) or, for `kfold`/`artist`, the
name of the fold each track is tested in, made by the same seeded code the benchmarks
use, so an external model can reproduce a leaderboard protocol exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mfs.analysis.population import Population, check_genre_count
from mfs.analysis.splits import fold_labels, make_folds, resolve_split
from mfs.analysis.training_table import TrainingTable, load_training_table
from mfs.store import Store
from mfs.store.atomic import write_atomic, write_parquet_atomic

FORMATS = (".parquet", ".csv", ".npz")


@dataclass
class ExportSummary:
    path: Path
    rows: int
    feature_columns: int
    split: str
    dropped: dict
    population: dict


def export(store: Store, library: str, features: list[str], split: str, out: Path,
           folds: int = 5, seed: int = 0,
           population: Population | None = None) -> ExportSummary:
    """Write the wide table of `features` over `library` to `out` (.parquet/.csv/.npz).
    Unlabelled tracks are kept unless a filter needs a label (`--genres`,
    `--min-per-genre`)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: export format must be one of {', '.join(FORMATS)}")
    population = population or Population()
    table = load_training_table(store, library, features, require_label=False,
                                population=population)
    if population.filtered:
        check_genre_count(table.genre, population, library,
                          "a genre classification table needs at least two")
    scheme = resolve_split(split, table.split)
    splits = _split_column(table, scheme, folds, seed)
    metadata = {"library": library, "features": [s.describe() for s in table.selections],
                "split": scheme, "folds": folds if scheme in ("kfold", "artist") else None,
                "seed": seed, "dropped": table.dropped, "population": table.population}
    labels = {"track_id": table.track_ids, "genre": table.genre, "split": splits,
              "artist": table.artist}
    if out.suffix.lower() == ".npz":
        _write_npz(out, table, labels, metadata)
    else:
        _write_table(out, table, labels, metadata)
    return ExportSummary(out, len(table.track_ids), table.X.shape[1], scheme, table.dropped,
                         table.population)


def _split_column(table: TrainingTable, scheme: str, folds: int, seed: int) -> np.ndarray:
    if scheme == "official":
        return table.split
    labelled = np.flatnonzero(table.genre != None)  # noqa: E711 (elementwise)
    column = np.full(len(table.genre), None, dtype=object)
    made = make_folds(scheme, table.genre[labelled].astype(str), table.split[labelled],
                      table.artist[labelled], seed, folds)
    column[labelled] = fold_labels(made, len(labelled))
    return column


def _write_table(out: Path, table: TrainingTable, labels: dict, metadata: dict) -> None:
    columns = {name: pa.array(values, pa.string()) for name, values in labels.items()}
    if out.suffix.lower() == ".parquet":
        columns["genres"] = pa.array(table.genres, pa.list_(pa.string()))
    else:  # CSV holds no lists
        columns["genres"] = pa.array([json.dumps(g) for g in table.genres], pa.string())
    for i, name in enumerate(table.feature_names):
        columns[name] = pa.array(table.X[:, i])
    wide = pa.table(columns).replace_schema_metadata({"mfs.export": json.dumps(metadata)})
    if out.suffix.lower() == ".parquet":
        write_parquet_atomic(wide, out)
        return
    from pyarrow import csv

    write_atomic(out, lambda tmp: csv.write_csv(wide, str(tmp)))


def _write_npz(out: Path, table: TrainingTable, labels: dict, metadata: dict) -> None:
    """Strings as fixed-width unicode (loadable without pickle); missing values as ''."""
    arrays = {name: np.asarray(["" if v is None else str(v) for v in values])
              for name, values in labels.items()}
    arrays["genres"] = np.asarray([json.dumps(g) for g in table.genres])

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a file object: numpy adds no ".npz" to the name
            np.savez_compressed(handle, X=table.X, feature_names=np.asarray(table.feature_names),
                                metadata=np.asarray(json.dumps(metadata)), **arrays)

    write_atomic(out, write)
