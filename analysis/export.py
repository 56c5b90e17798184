"""Export a training table (features + genre, split and artist per track) for use
outside the store: Parquet, CSV or NumPy `.npz`, chosen by the output's suffix.

`genre` is the population's label (`analysis/population.py`, the same filters as
`mfs bench`), `genres` every genre of the track (FMA's `genres_all`; a list in Parquet,
JSON text in CSV and .npz) for multi-label work. Feature columns are named per dimension
as `analysis/selection.py` names them: `<extractor>.<column>.<name>` where the extractor
named its dimensions (fma518's `chroma_cens/kurtosis/01`, musicnn's tags), else
`<extractor>.<column>[<i>]`.

The split column is the dataset's own split (`official`) or, for `kfold`/`artist`, the
name of the fold each track is tested in, made by the same seeded code the benchmarks
use, so an external model can reproduce a leaderboard protocol exactly.

`training_data` builds the table in memory; `export` writes it. The Python API
(`mfs.api`) returns the same `TrainingData`, so a notebook sees exactly what a file holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from mfs.analysis.population import Population, check_genre_count
from mfs.analysis.splits import fold_labels, make_folds, resolve_split
from mfs.analysis.training_table import TrainingTable, load_training_table
from mfs.store import Store
from mfs.store.atomic import write_atomic, write_parquet_atomic

if TYPE_CHECKING:
    import pandas
    import polars

FORMATS = (".parquet", ".csv", ".npz")


@dataclass
class ExportSummary:
    path: Path
    rows: int
    feature_columns: int
    split: str
    dropped: dict
    population: dict


@dataclass
class TrainingData:
    """One export's rows in memory: features `X` (float32, tracks × dimensions, NaN where
    a value was missing or not finite), label `y` (None for an unlabelled track), the
    `split` column (official split or the fold a track is tested in), and `metadata` (the
    selections with their config hashes, split scheme, seed, tracks dropped and why)."""

    table: TrainingTable
    split: np.ndarray
    scheme: str
    metadata: dict

    @property
    def X(self) -> np.ndarray:  # noqa: N802 (the name every ML notebook uses)
        return self.table.X

    @property
    def y(self) -> np.ndarray:
        return self.table.genre

    @property
    def track_id(self) -> np.ndarray:
        return self.table.track_ids

    @property
    def artist(self) -> np.ndarray:
        return self.table.artist

    @property
    def genres(self) -> list[list[str]]:
        return self.table.genres

    @property
    def feature_names(self) -> list[str]:
        return self.table.feature_names

    def __len__(self) -> int:
        return len(self.table.track_ids)

    def __repr__(self) -> str:
        return (f"TrainingData({self.table.library!r}: {len(self)} tracks × "
                f"{self.X.shape[1]} features, split {self.scheme!r})")

    def to_arrow(self, genres_as_json: bool = False) -> pa.Table:
        """The wide table export writes: label columns, then one float32 column per
        feature name; the metadata under the schema key `mfs.export`."""
        columns = {"track_id": self.track_id, "genre": self.y, "split": self.split,
                   "artist": self.artist}
        arrays = {name: pa.array(values, pa.string()) for name, values in columns.items()}
        arrays["genres"] = (pa.array([json.dumps(g) for g in self.genres], pa.string())
                            if genres_as_json else pa.array(self.genres, pa.list_(pa.string())))
        for i, name in enumerate(self.feature_names):
            arrays[name] = pa.array(self.X[:, i])
        return pa.table(arrays).replace_schema_metadata(
            {"mfs.export": json.dumps(self.metadata)})

    def to_polars(self) -> polars.DataFrame:
        import polars

        return polars.from_arrow(self.to_arrow())

    def to_pandas(self) -> pandas.DataFrame:
        return self.to_arrow().to_pandas()

    def write(self, out: Path | str) -> Path:
        """Write to `out`; the format is its suffix (.parquet, .csv, .npz)."""
        out = Path(out)
        check_format(out)
        suffix = out.suffix.lower()
        if suffix == ".npz":
            _write_npz(out, self)
        elif suffix == ".parquet":
            write_parquet_atomic(self.to_arrow(), out)
        else:  # CSV holds no lists
            from pyarrow import csv

            wide = self.to_arrow(genres_as_json=True)
            write_atomic(out, lambda tmp: csv.write_csv(wide, str(tmp)))
        return out


def check_format(out: Path) -> None:
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: export format must be one of {', '.join(FORMATS)}")


def training_data(store: Store, library: str, features: list[str], split: str = "auto",
                  folds: int = 5, seed: int = 0, population: Population | None = None,
                  require_label: bool = False) -> TrainingData:
    """The table of `features` over `library` that `export` writes. Unlabelled tracks are
    kept unless `require_label` or a filter needs a label (`genres`, `min_per_genre`)."""
    population = population or Population()
    table = load_training_table(store, library, features, require_label=require_label,
                                population=population)
    if population.filtered:
        check_genre_count(table.genre, population, library,
                          "a genre classification table needs at least two")
    scheme = resolve_split(split, table.split)
    metadata = {"library": library, "features": [s.describe() for s in table.selections],
                "split": scheme, "folds": folds if scheme in ("kfold", "artist") else None,
                "seed": seed, "dropped": table.dropped, "population": table.population}
    return TrainingData(table, _split_column(table, scheme, folds, seed), scheme, metadata)


def export(store: Store, library: str, features: list[str], split: str, out: Path,
           folds: int = 5, seed: int = 0,
           population: Population | None = None) -> ExportSummary:
    """Write the wide table of `features` over `library` to `out` (.parquet/.csv/.npz)."""
    out = Path(out)
    check_format(out)  # before the table is built, which can take minutes
    data = training_data(store, library, features, split, folds, seed, population)
    data.write(out)
    return ExportSummary(out, len(data), data.X.shape[1], data.scheme, data.table.dropped,
                         data.table.population)


def _split_column(table: TrainingTable, scheme: str, folds: int, seed: int) -> np.ndarray:
    if scheme == "official":
        return table.split
    labelled = np.flatnonzero(table.genre != None)  # noqa: E711 (elementwise)
    column = np.full(len(table.genre), None, dtype=object)
    if not len(labelled):  # a library without genres (tags): no folds to assign
        return column
    made = make_folds(scheme, table.genre[labelled].astype(str), table.split[labelled],
                      table.artist[labelled], seed, folds)
    column[labelled] = fold_labels(made, len(labelled))
    return column


def _write_npz(out: Path, data: TrainingData) -> None:
    """Strings as fixed-width unicode (loadable without pickle); missing values as ''."""
    labels = {"track_id": data.track_id, "genre": data.y, "split": data.split,
              "artist": data.artist}
    arrays = {name: np.asarray(["" if v is None else str(v) for v in values])
              for name, values in labels.items()}
    arrays["genres"] = np.asarray([json.dumps(g) for g in data.genres])

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a file object: numpy adds no ".npz" to the name
            np.savez_compressed(handle, X=data.X, feature_names=np.asarray(data.feature_names),
                                metadata=np.asarray(json.dumps(data.metadata)), **arrays)

    write_atomic(out, write)
