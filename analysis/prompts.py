"""Text-prompt embeddings for zero-shot genre: their own store table, never fake tracks.

A prompt is a template with `{genre}` filled in ("This audio is a {genre} song.", the
LAION-CLAP README's, by default). Its embedding comes from the text tower of the very
model an audio selection was extracted with (same extractor, config and model files), so
it is stored under that extractor config, in `prompts/<extractor>/<config_hash>/`, one row
per prompt with the genre, template and provenance (store/SCHEMA.md). `mfs bench --model
zero-shot` computes the prompts the library's genres lack, once; later runs read them.

Only extractors with a text tower (`embed_texts`, `text_files`; `clap-music`) have prompts.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from mfs.analysis.selection import Selection
from mfs.store.health import split_damaged, warn_left_out
from mfs.store.provenance import files_sha256, library_versions
from mfs.store.schema import PROMPTS
from mfs.store.sql import ident

if TYPE_CHECKING:
    import duckdb

    from mfs.extractors.base import Extractor
    from mfs.store import Store

DEFAULT_TEMPLATE = "This audio is a {genre} song."


def prompt_text(template: str, genre: str) -> str:
    """`template` with `{genre}` filled in; a ValueError when it has no `{genre}` field."""
    if "{genre}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{genre}} field, "
                         "e.g. 'This audio is a {genre} song.'")
    try:
        return template.format(genre=genre)
    except (IndexError, KeyError, ValueError) as error:
        raise ValueError(f"prompt template {template!r}: {error}; only {{genre}} is "
                         "filled in (double other braces)") from None


def stored_prompts(store: Store, extractor: str, config_hash: str) -> pa.Table:
    """Every stored prompt row of one extractor config (damaged parts left out, warned)."""
    import pyarrow.parquet as pq

    parts = sorted((store.prompts_dir / extractor / config_hash).glob("*.parquet"))
    healthy, damaged = split_damaged(store.root, parts)
    if damaged:
        warn_left_out(store.root, damaged)
    if not healthy:
        return PROMPTS.empty_table()
    return pa.concat_tables(pq.read_table(part).cast(PROMPTS) for part in healthy)


def audio_model_hashes(con: duckdb.DuckDBPyConnection, selection: Selection) -> set[str]:
    """The model hashes the selection's audio rows were computed with."""
    rows = con.execute(f"SELECT DISTINCT model_hash FROM {ident(selection.view)} "
                       "WHERE config_hash = $h", {"h": selection.config_hash}).fetchall()
    return {row[0] for row in rows}


def prompt_embeddings(store: Store, con: duckdb.DuckDBPyConnection, selection: Selection,
                      genres: list[str], template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """(genres, dim) text embeddings of `template` for each genre, from the model the
    selection's audio came from; prompts not stored yet are computed and stored first."""
    wanted = {genre: prompt_text(template, genre) for genre in genres}
    models = audio_model_hashes(con, selection)
    stored = _newest(stored_prompts(store, selection.extractor, selection.config_hash),
                     models)
    missing = [genre for genre, prompt in wanted.items() if prompt not in stored]
    if missing:
        stored.update(write_prompts(store, con, selection, missing, template, models))
    return np.stack([stored[wanted[genre]] for genre in genres])


def write_prompts(store: Store, con: duckdb.DuckDBPyConnection, selection: Selection,
                  genres: list[str], template: str, models: set[str]
                  ) -> dict[str, np.ndarray]:
    """Embed the prompts of `genres` with the selection's model and store them; returns
    prompt → embedding. Refuses a model whose files are not those the audio rows record."""
    extractor = stored_extractor(con, selection)
    model_hash = files_sha256(extractor.model_files())
    if model_hash not in models:
        raise ValueError(
            f"{selection.extractor}@{selection.config_hash}: the model found now "
            f"({extractor.model_location()}, sha256 {model_hash[:12]}) is not the one its "
            f"audio was extracted with ({', '.join(sorted(h[:12] for h in models))}); "
            "prompts must come from the same model")
    prompts = [prompt_text(template, genre) for genre in genres]
    vectors = np.asarray(extractor.embed_texts(prompts), dtype=np.float32)
    now = datetime.now(UTC)
    table = pa.Table.from_pylist([
        {"extractor": selection.extractor, "config_hash": selection.config_hash,
         "genre": genre, "template": template, "prompt": prompt, "embedding": vector.tolist(),
         "model_hash": model_hash,
         "tokenizer_hash": files_sha256(extractor.text_files()),
         "versions": library_versions(), "created_at": now}
        for genre, prompt, vector in zip(genres, prompts, vectors, strict=True)],
        schema=PROMPTS)
    with store.writing("prompts") as writer:
        writer.append_prompts(selection.extractor, selection.config_hash, table)
    return dict(zip(prompts, vectors, strict=True))


def stored_extractor(con: duckdb.DuckDBPyConnection, selection: Selection) -> Extractor:
    """The extractor, with the config its audio rows were stored with, that has a text
    tower; one line when it has none or when today's code hashes that config apart."""
    from mfs.extractors import registry

    try:
        cls = registry.extractor_class(selection.extractor)
    except (KeyError, ImportError, AttributeError):
        raise ValueError(f"{selection.extractor!r} is no registered extractor here: its "
                         "prompts cannot be embedded") from None
    if not hasattr(cls, "embed_texts"):
        raise ValueError(f"zero-shot needs an audio/text model such as clap-music; "
                         f"{selection.extractor!r} has no text tower for the prompts")
    config = json.loads(con.execute(
        f"SELECT any_value(config) FROM {ident(selection.view)} WHERE config_hash = $h",
        {"h": selection.config_hash}).fetchone()[0])
    if cls.hash_config(config) != selection.config_hash:
        raise ValueError(f"{selection.extractor}@{selection.config_hash} was extracted by "
                         "older code (its config now hashes apart); re-extract it "
                         "(mfs extract LIB -e SPEC) before scoring zero-shot")
    return cls(dataclasses.replace(cls.default_config(), **config))


def _newest(rows: pa.Table, models: set[str]) -> dict[str, np.ndarray]:
    """prompt → embedding, the newest row per prompt among those of `models`."""
    found: dict[str, tuple[datetime, np.ndarray]] = {}
    for row in rows.to_pylist():
        if row["model_hash"] not in models:
            continue
        if row["prompt"] not in found or row["created_at"] > found[row["prompt"]][0]:
            found[row["prompt"]] = (row["created_at"],
                                    np.asarray(row["embedding"], dtype=np.float32))
    return {prompt: vector for prompt, (_, vector) in found.items()}
