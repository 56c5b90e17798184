"""Genre benchmarks over stored features: fit on the training split, score the test split.

`run_benchmarks` loads every feature the configurations need into one training table (so
single extractors and their ensembles are scored on the same tracks), evaluates each
configuration, and appends one leaderboard row per configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from mfs.analysis.leaderboard import append_results
from mfs.analysis.leakage import known_leak
from mfs.analysis.models import EARLY_STOPPED, MODELS, check_class_weight, model_params
from mfs.analysis.population import Population, check_genre_count
from mfs.analysis.predictors import Predictor, Recipe
from mfs.analysis.results import (
    BenchmarkConfig,
    BenchmarkResult,
    merge_columns,
    prediction_rows,
    score_folds,
)
from mfs.analysis.selection import check_distinct_columns, expand_layer_sweeps, split_specs
from mfs.analysis.splits import Fold, make_folds, resolve_split
from mfs.analysis.training_table import Block, TrainingTable, load_training_table
from mfs.analysis.tuning import Choice, choose, tuning_record
from mfs.analysis.zero_shot import ZERO_SHOT, evaluate_zero_shot
from mfs.store import Store

TOP_FEATURES = 30


def run_benchmarks(store: Store, configs: list[BenchmarkConfig],
                   save: bool = True) -> list[BenchmarkResult]:
    """Evaluate configurations of one library on the tracks that have all their features,
    over one connection to the store (each new one rebuilds every view)."""
    libraries = {c.library for c in configs}
    if len(libraries) != 1:
        raise ValueError(f"benchmarks compare one library at a time, got {sorted(libraries)}")
    populations = {c.population for c in configs}
    if len(populations) != 1:
        raise ValueError("benchmarks compared in one command share one population (label "
                         "and filters); run one command per population")
    population = populations.pop()
    specs = list(dict.fromkeys(spec for c in configs for spec in c.features))
    con = store.connect()
    table = load_training_table(store, libraries.pop(), specs, distinct_columns=False, con=con,
                                population=population)
    if len(table.track_ids) == 0 and not population.filtered:
        raise ValueError(f"no labelled tracks of {table.library!r} have all of "
                         f"{', '.join(specs)} ({table.dropped})")
    check_genre_count(table.genre, population, table.library)
    results = [evaluate_zero_shot(store, table, c, con) if c.model == ZERO_SHOT
               else evaluate(table, c) for c in configs]
    results = [replace(r, leak=known_leak(store, con, table.library, r.split)) for r in results]
    if save:
        append_results(store, results)
    return results


def bench_configs(library: str, feature_sets: list[str], models: list[str],
                  ensemble: str = "concat", prune: float | None = None,
                  pca: float | None = None, split: str = "auto", folds: int = 5,
                  seed: int = 0, prompts: str | None = None,
                  population: Population | None = None,
                  class_weight: str | None = None, seeds: int = 1,
                  store: Store | None = None, tune: bool = False) -> list[BenchmarkConfig]:
    """Every (model, feature set, ensemble) combination; `a+b` sets are concatenated,
    voted, or both (`ensemble="both"`), single selections are just themselves; a layer
    sweep (`x:layer=4-12`, or `x:layer=all` with `store`) is one feature set per layer.
    Every configuration shares `population`; `class_weight`, `seeds` and `tune` apply to
    each trained model (zero-shot trains nothing, so its entries have none of them)."""
    check_class_weight(class_weight)
    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: repeat at least once")
    population = population or Population()
    modes = {"concat": ("concat",), "vote": ("vote",), "both": ("concat", "vote")}
    if ensemble not in modes:
        raise ValueError(f"unknown ensemble {ensemble!r}; use concat, vote or both")
    unknown = sorted(set(models) - {*MODELS, ZERO_SHOT})
    if unknown or not models:
        raise ValueError(f"unknown model {', '.join(unknown) or '(none)'}; use "
                         f"{', '.join((*MODELS, ZERO_SHOT))}")
    if not feature_sets:
        raise ValueError("no features selected; name at least one extractor")
    voted = [text for text in feature_sets if "|" in text]
    if voted:
        # The leaderboard names voting ensembles `a|b`; on the command line they are `a+b`.
        raise ValueError(f"--features {voted[0]!r}: '|' joins nothing here; vote with "
                         f"--features {voted[0].replace('|', '+')!r} --ensemble vote")
    configs = []
    for model in models:
        for text in expand_layer_sweeps(feature_sets, store):
            specs = tuple(split_specs(text, "+"))
            for mode in modes[ensemble] if len(specs) > 1 else ("concat",):
                configs.append(BenchmarkConfig(
                    library, specs, model, mode, prune, pca, split, folds, seed, prompts,
                    population, None if model == ZERO_SHOT else class_weight,
                    1 if model == ZERO_SHOT else seeds, tune and model != ZERO_SHOT))
    return configs


def evaluate(table: TrainingTable, config: BenchmarkConfig) -> BenchmarkResult:
    """Fit and score `config` on every fold of its split, once per seed (`config.seeds`):
    the first seed gives the scores and interval, every seed its own scores for the spread,
    and every test prediction is kept for paired comparisons (`analysis/compare.py`). With
    `tune`, each fold fits the settings chosen for it without its test rows
    (`analysis.tuning`)."""
    started = time.perf_counter()
    genres = table.genre.astype(str)
    labels = sorted(set(genres))
    y = np.searchsorted(labels, genres)
    split = resolve_split(config.split, table.split)
    blocks = [table.block(spec) for spec in config.features]
    check_distinct_columns([block.selection for block in blocks])
    runs = [_run_seed(table, config, blocks, genres, y, len(labels), split, seed)
            for seed in range(config.seed, config.seed + config.seeds)]
    first = runs[0]
    scored = score_folds(first.truths, first.predictions, labels, config.seed)
    seed_scores = [{"seed": config.seed, **scored["scores"]}] + [
        {"seed": run.seed, **score_folds(run.truths, run.predictions, labels, run.seed)["scores"]}
        for run in runs[1:]]
    importance = _mean_shares(first.shares)
    return BenchmarkResult(
        config=config, split=split, labels=labels,
        selections=[b.selection.describe() for b in blocks],
        n_tracks=len(y), n_train=int(np.mean(first.fitted)),
        n_test=int(np.mean([len(f.test) for f in first.folds])),
        n_features_in=sum(b.stop - b.start for b in blocks),
        n_features_used=int(round(np.mean(first.used))),
        **scored,
        dropped=table.dropped, duration_s=time.perf_counter() - started,
        model_params=_recorded_params(config, first.folds, first.choices),
        importance=dict(list(importance.items())[:TOP_FEATURES]),
        importance_by_selection=_by_selection(importance, table, blocks),
        population=table.population,
        predictions=merge_columns([prediction_rows(
            table.track_ids, labels, run.truths, run.predictions,
            [f.test for f in run.folds], [f.name for f in run.folds], run.seed) for run in runs]),
        seed_scores=seed_scores,
    )


@dataclass
class _SeedRun:
    """One seed's folds and what was fitted and predicted on them."""

    seed: int
    folds: list[Fold]
    truths: list[np.ndarray] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    shares: list[dict[str, float]] = field(default_factory=list)
    used: list[int] = field(default_factory=list)
    fitted: list[int] = field(default_factory=list)  # rows each fold's model was fitted on
    choices: list[Choice] = field(default_factory=list)  # with `tune`: each fold's settings


def _run_seed(table: TrainingTable, config: BenchmarkConfig, blocks: list[Block],
              genres: np.ndarray, y: np.ndarray, n_labels: int, split: str,
              seed: int) -> _SeedRun:
    # Folds stratify on the names (the same folds as on y), so errors name the genre.
    run = _SeedRun(seed, make_folds(split, genres, table.split, table.artist, seed,
                                    config.folds))
    recipe = Recipe(config.model, config.ensemble, config.prune, config.pca, seed,
                    config.class_weight)
    for fold in run.folds:
        fold_recipe, fit_rows = recipe, fold.train
        if config.tune:
            choice = choose(recipe, blocks, table.feature_names, table.X, y, n_labels, fold,
                            table.artist)
            run.choices.append(choice)
            fold_recipe = replace(recipe, params=tuple(choice.params.items()))
            fit_rows = choice.fit_rows
        predictor = Predictor(fold_recipe, blocks, table.feature_names)
        predictor.fit(table.X, fit_rows, y[fit_rows], n_labels,
                      (fold.validation, y[fold.validation]) if len(fold.validation) else None)
        run.fitted.append(len(fit_rows))
        run.truths.append(y[fold.test])
        run.predictions.append(predictor.predict(table.X, fold.test))
        run.shares.append(predictor.gain_shares())
        run.used.append(predictor.n_features_used())
    return run


def _recorded_params(config: BenchmarkConfig, folds: list, choices: list[Choice]) -> dict:
    """The classifier's settings for the leaderboard: the defaults, or with `tune` the
    chosen ones (when one fold) and the search under `tuning`; early-stopped models say
    what they stopped on."""
    chosen = choices[0].params if len(choices) == 1 else None
    params = model_params(config.model, config.seed, config.class_weight, chosen)
    if choices:
        params["tuning"] = tuning_record(config.model, choices)
    if config.model in EARLY_STOPPED:
        params["early_stopping_on"] = ("validation part" if len(folds[0].validation)
                                       else "a stratified tenth of the training rows")
    return params


def _mean_shares(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Average importance shares over folds, largest first."""
    total: dict[str, float] = {}
    for shares in per_fold:
        for name, share in shares.items():
            total[name] = total.get(name, 0.0) + share / len(per_fold)
    return dict(sorted(total.items(), key=lambda item: -item[1]))


def _by_selection(importance: dict[str, float], table: TrainingTable,
                  blocks: list[Block]) -> dict[str, float]:
    """Importance summed per selection spec; PCA components count as `pca components`."""
    owner = {name: block.selection.spec for block in blocks
             for name in table.feature_names[block.start:block.stop]}
    sums: dict[str, float] = {}
    for name, share in importance.items():
        key = owner.get(name, "pca components")
        sums[key] = sums.get(key, 0.0) + share
    return sums
