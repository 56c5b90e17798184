"""Zero-shot genre classification from CLAP-style joint audio/text embeddings.

Contract (until a CLAP extractor exists): the audio embeddings are any stored selection
(e.g. `clap:audio_mean`); the text embeddings of the prompts are rows of an extractor
output whose track_id is `prompt:<genre>` (or `prompt:<genre>:<n>` for several prompts per
genre, averaged). A track's genre is the prompt with the highest cosine similarity.
Nothing is fitted, so the whole evaluation set is scored: the test split when the library
has one, else every track.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc

from mfs.analysis.results import BenchmarkConfig, BenchmarkResult, score_folds
from mfs.analysis.selection import resolve
from mfs.analysis.splits import resolve_split
from mfs.analysis.training_table import TrainingTable
from mfs.store import Store
from mfs.store.sql import ident

if TYPE_CHECKING:
    import duckdb

ZERO_SHOT = "zero-shot"
PROMPT_PREFIX = "prompt:"


def cosine_scores(audio: np.ndarray, text: np.ndarray) -> np.ndarray:
    """(tracks, prompts) cosine similarities; rows with NaN score -inf everywhere."""
    a = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    return np.nan_to_num(a @ t.T, nan=-np.inf)


def load_prompt_embeddings(store: Store, spec: str,
                           con: duckdb.DuckDBPyConnection | None = None
                           ) -> tuple[list[str], np.ndarray]:
    """Genre names and their (averaged) prompt embeddings, from `prompt:<genre>[:n]` rows;
    `con`: the command's connection to the store, if it has one."""
    con = con or store.connect()
    selection = resolve(store, con, spec)
    if len(selection.columns) != 1:
        raise ValueError(f"prompt selection {spec!r} matches {len(selection.columns)} columns;"
                         " name one, as extractor:column")
    column = selection.columns[0]
    rows = con.sql(
        f"SELECT track_id, {ident(column.name)} AS v FROM {ident(selection.view)} "
        "WHERE config_hash = $h AND starts_with(track_id, $prefix) ORDER BY track_id",
        params={"h": selection.config_hash, "prefix": PROMPT_PREFIX}).to_arrow_table()
    if rows.num_rows == 0:
        raise KeyError(f"{spec!r} has no prompt rows (track_id '{PROMPT_PREFIX}<genre>')")
    vectors = pc.list_flatten(rows.column("v")).to_numpy().reshape(rows.num_rows, column.dim)
    genres = [tid.removeprefix(PROMPT_PREFIX).split(":")[0]
              for tid in rows.column("track_id").to_pylist()]
    names = sorted(set(genres))
    by_genre = np.stack([vectors[[g == name for g in genres]].mean(axis=0) for name in names])
    return names, by_genre


def evaluate_zero_shot(store: Store, table: TrainingTable, config: BenchmarkConfig,
                       con: duckdb.DuckDBPyConnection | None = None) -> BenchmarkResult:
    """Score `config.features` (one audio selection) against `config.prompts`."""
    started = time.perf_counter()
    if config.prompts is None or len(config.features) != 1:
        raise ValueError("zero-shot needs exactly one audio selection and --prompts")
    prompt_genres, text = load_prompt_embeddings(store, config.prompts, con)
    labels = sorted(set(table.genre))
    unprompted = sorted(set(labels) - set(prompt_genres))
    if unprompted:
        raise ValueError(f"no prompt for genres {', '.join(unprompted)} in {config.prompts!r}")
    split = resolve_split(config.split, table.split)
    rows = (np.flatnonzero(table.split == "test") if split == "official"
            else np.arange(len(table.genre)))
    block = table.block(config.features[0])
    audio = table.X[rows, block.start:block.stop]
    if audio.shape[1] != text.shape[1]:
        raise ValueError(f"audio embeddings have {audio.shape[1]} dims, prompt embeddings "
                         f"{text.shape[1]}; they must come from the same model")
    # Only the library's genres compete (prompts for other genres are ignored).
    text = text[[prompt_genres.index(g) for g in labels]]
    y_pred = cosine_scores(audio, text).argmax(axis=1)
    y_true = np.searchsorted(labels, table.genre[rows].astype(str))
    return BenchmarkResult(
        config=config, split=split, labels=labels,
        selections=[block.selection.describe()], n_tracks=len(table.genre), n_train=0,
        n_test=len(rows), n_features_in=block.stop - block.start,
        n_features_used=block.stop - block.start,
        **score_folds([y_true], [y_pred], labels, config.seed),
        dropped=table.dropped, duration_s=time.perf_counter() - started,
        model_params={"prompts": config.prompts, "similarity": "cosine"},
        population=table.population,
    )
