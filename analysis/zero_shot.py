"""Zero-shot genre classification from joint audio/text embeddings (CLAP).

A track's genre is the prompt whose text embedding has the highest cosine similarity with
the track's audio embedding. The prompts are one template ("This audio is a {genre}
song." unless `--prompts` gives another) filled in with each of the library's genres, and
their embeddings come from the prompt table of the audio selection's own model
(`mfs.analysis.prompts`), computed there the first time they are needed. Nothing is
fitted, so the whole evaluation set is scored: the test split when the library has one,
else every track.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from mfs.analysis.prompts import DEFAULT_TEMPLATE, prompt_embeddings
from mfs.analysis.results import (
    BenchmarkConfig,
    BenchmarkResult,
    prediction_rows,
    score_folds,
)
from mfs.analysis.splits import resolve_split
from mfs.analysis.training_table import Block, TrainingTable
from mfs.store import Store

if TYPE_CHECKING:
    import duckdb

ZERO_SHOT = "zero-shot"


def cosine_scores(audio: np.ndarray, text: np.ndarray) -> np.ndarray:
    """(tracks, prompts) cosine similarities; rows with NaN score -inf everywhere."""
    a = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    return np.nan_to_num(a @ t.T, nan=-np.inf)


def audio_columns(block: Block) -> tuple[str, slice]:
    """The one stored column of `block` that zero-shot compares with the prompts, and its
    place in the block: the selection's only column, else the column its extractor names
    (`zero_shot_column`, e.g. clap-music's `audio_unit_mean`)."""
    from mfs.extractors import registry

    columns = block.selection.columns
    if len(columns) == 1:
        wanted = columns[0].name
    else:
        try:
            wanted = registry.extractor_class(block.selection.extractor).zero_shot_column
        except (KeyError, ImportError, AttributeError):
            wanted = None
        if wanted not in [c.name for c in columns]:
            raise ValueError(f"zero-shot compares one audio column; {block.selection.spec!r} "
                             f"has {len(columns)} ({', '.join(c.name for c in columns)}): "
                             "name one, as extractor:column")
    offset = block.start
    for column in columns:
        if column.name == wanted:
            return wanted, slice(offset, offset + column.dim)
        offset += column.dim
    raise AssertionError("unreachable")


def evaluate_zero_shot(store: Store, table: TrainingTable, config: BenchmarkConfig,
                       con: duckdb.DuckDBPyConnection | None = None) -> BenchmarkResult:
    """Score `config.features` (one audio selection) against the prompts of
    `config.prompts` (a template; None: `DEFAULT_TEMPLATE`) for the library's genres."""
    started = time.perf_counter()
    if len(config.features) != 1:
        raise ValueError("zero-shot scores one audio selection at a time, not "
                         f"{config.feature_set!r}")
    template = config.prompts or DEFAULT_TEMPLATE
    labels = sorted(set(table.genre.astype(str)))
    block = table.block(config.features[0])
    column, place = audio_columns(block)
    text = prompt_embeddings(store, con or store.connect(), block.selection, labels, template)
    split = resolve_split(config.split, table.split)
    rows = (np.flatnonzero(table.split == "test") if split == "official"
            else np.arange(len(table.genre)))
    audio = table.X[rows, place]
    if audio.shape[1] != text.shape[1]:
        raise ValueError(f"{column} has {audio.shape[1]} dims, the prompt embeddings "
                         f"{text.shape[1]}: zero-shot needs the model's joint embedding")
    # Only the library's genres compete: one prompt each.
    y_pred = cosine_scores(audio, text).argmax(axis=1)
    y_true = np.searchsorted(labels, table.genre[rows].astype(str))
    scored = score_folds([y_true], [y_pred], labels, config.seed)
    return BenchmarkResult(
        config=config, split=split, labels=labels,
        selections=[block.selection.describe()], n_tracks=len(table.genre), n_train=0,
        n_test=len(rows), n_features_in=audio.shape[1], n_features_used=audio.shape[1],
        **scored,
        dropped=table.dropped, duration_s=time.perf_counter() - started,
        model_params={"template": template, "column": column, "similarity": "cosine"},
        population=table.population,
        predictions=prediction_rows(table.track_ids, labels, [y_true], [y_pred], [rows],
                                    [split], config.seed),
        seed_scores=[{"seed": config.seed, **scored["scores"]}],
    )
