"""Synthetic libraries with known answers, for tests and benchmarks (no audio needed).

Each genre has its own random centroid per extractor; a track's vector is its genre's
centroid times `separation` plus unit Gaussian noise, so accuracy rises with separation.
Tracks cycle through genres; within a genre, indices 0–5 of every 10 are train, 6–7
validation and 8–9 test, and artists cycle through `artists_per_genre` names per genre.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mfs.store import Store
from mfs.store.feature_rows import feature_table
from mfs.store.schema import TRACKS

SPLIT_OF_INDEX = ("train",) * 6 + ("validation",) * 2 + ("test",) * 2


@dataclass
class SyntheticLibrary:
    library: str
    track_ids: list[str]
    genres: np.ndarray
    splits: np.ndarray
    artists: np.ndarray


def tracks_table(library: str, track_ids: list[str], genres: list[str | None],
                 splits: list[str | None] | None = None,
                 artists: list[str | None] | None = None, kind: str = "gtzan") -> pa.Table:
    """A minimal tracks table (status ok, no audio facts) for libraries built in memory."""
    n = len(track_ids)
    columns = {name: [None] * n for name in TRACKS.names}
    columns.update(track_id=track_ids, library=[library] * n, library_kind=[kind] * n,
                   genre=list(genres), genres=[[g] if g else None for g in genres],
                   split=list(splits) if splits is not None else [None] * n,
                   artist=list(artists) if artists is not None else [None] * n,
                   status=["ok"] * n)
    return pa.table(columns, schema=TRACKS)


def make_library(library: str, n_tracks: int, genres: tuple[str, ...],
                 artists_per_genre: int = 5) -> SyntheticLibrary:
    """Track ids and labels only (nothing is written)."""
    index = np.arange(n_tracks)
    genre_of = np.asarray(genres, dtype=object)[index % len(genres)]
    within = index // len(genres)
    track_ids = [f"{library}:{g}.{w:05d}" for g, w in zip(genre_of, within, strict=True)]
    splits = np.asarray(SPLIT_OF_INDEX, dtype=object)[within % len(SPLIT_OF_INDEX)]
    artists = np.asarray([f"{g}-artist{w % artists_per_genre}"
                          for g, w in zip(genre_of, within, strict=True)], dtype=object)
    return SyntheticLibrary(library, track_ids, genre_of, splits, artists)


def write_synthetic_library(store: Store, library: str = "synth", n_tracks: int = 200,
                            genres: tuple[str, ...] = ("alpha", "beta", "gamma", "delta"),
                            dims: dict[str, int] | None = None, separation: float = 1.0,
                            with_split: bool = True, artists_per_genre: int = 5,
                            seed: int = 0, batch_rows: int = 10_000) -> SyntheticLibrary:
    """Write tracks and one `embedding_mean` column per extractor in `dims`."""
    lib = make_library(library, n_tracks, genres, artists_per_genre)
    dims = dims if dims is not None else {"synth-a": 16}
    rng = np.random.default_rng(seed)
    genre_index = np.searchsorted(np.asarray(sorted(genres)), lib.genres.astype(str))
    run_id = uuid.uuid4().hex
    with store.writing(f"synthetic {library}") as writer:
        writer.replace_tracks(library, tracks_table(
            library, lib.track_ids, list(lib.genres),
            list(lib.splits) if with_split else None, list(lib.artists)))
        for extractor, dim in dims.items():
            centroids = rng.standard_normal((len(genres), dim)).astype(np.float32) * separation
            for start in range(0, n_tracks, batch_rows):
                rows = slice(start, min(start + batch_rows, n_tracks))
                noise = rng.standard_normal((rows.stop - rows.start, dim), dtype=np.float32)
                batch = feature_table(
                    extractor, {"synthetic": True, "dim": dim}, lib.track_ids[rows],
                    {"embedding_mean": centroids[genre_index[rows]] + noise},
                    model_hash="none", run_id=run_id)
                writer.append_features(extractor, batch.column("config_hash")[0].as_py(), batch)
    return lib


def write_layered_extractor(store: Store, lib: SyntheticLibrary, extractor: str = "layered",
                            layers: int = 5, dim: int = 8, best_layer: int = 2,
                            separation: float = 1.5, seed: int = 0,
                            batch_rows: int = 10_000) -> None:
    """One `hidden_lNN_mean` column per layer, as a transformer extractor stores them, whose
    genre separation peaks at `best_layer` (halving per layer away from it), so a layer
    sweep has a known best layer."""
    rng = np.random.default_rng(seed)
    genres = sorted(set(lib.genres.astype(str)))
    genre_index = np.searchsorted(np.asarray(genres), lib.genres.astype(str))
    centroids = rng.standard_normal((layers, len(genres), dim)).astype(np.float32)
    scale = separation * 0.5 ** np.abs(np.arange(layers) - best_layer)
    run_id = uuid.uuid4().hex
    with store.writing(f"synthetic layers {extractor}") as writer:
        for start in range(0, len(lib.track_ids), batch_rows):
            rows = slice(start, min(start + batch_rows, len(lib.track_ids)))
            n = rows.stop - rows.start
            columns = {f"hidden_l{layer:02d}_mean": centroids[layer][genre_index[rows]]
                       * scale[layer] + rng.standard_normal((n, dim), dtype=np.float32)
                       for layer in range(layers)}
            batch = feature_table(extractor, {"synthetic": True, "layers": layers, "dim": dim},
                                  lib.track_ids[rows], columns, model_hash="none",
                                  run_id=run_id)
            writer.append_features(extractor, batch.column("config_hash")[0].as_py(), batch)
