"""Research-grade benchmarks: layer sweeps, paired comparisons of leaderboard rows, repeated
seeds and splits known to leak — through the CLI as a user types them, on synthetic stores
whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import invoke
from scipy.stats import binomtest
from synthetic_store import write_layered_extractor, write_synthetic_library

from mfs.analysis.compare import compare_predictions, mcnemar_exact, paired_bootstrap
from mfs.analysis.report import write_report
from mfs.analysis.selection import expand_layer_sweeps
from mfs.store import Store


def _predictions(truth: list[str], predicted: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"track_id": [f"t{i}" for i in range(len(truth))], "truth": truth,
                         "predicted": predicted})


@pytest.mark.parametrize(("a_only", "b_only"), [(0, 0), (1, 0), (3, 9), (12, 2), (40, 41)])
def test_mcnemar_exact_is_the_two_sided_binomial_test_on_discordant_tracks(a_only, b_only):
    expected = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only, 0.5).pvalue
    assert mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-12)


def test_clearly_better_is_distinguishable_and_identical_is_not():
    rng = np.random.default_rng(0)
    truth = list(rng.choice(["rock", "jazz", "pop"], 300))
    wrong = {"rock": "jazz", "jazz": "pop", "pop": "rock"}
    good = [t if i % 10 else wrong[t] for i, t in enumerate(truth)]  # 90 % right
    poor = [t if i % 2 else wrong[t] for i, t in enumerate(truth)]  # 50 % right
    better = compare_predictions(_predictions(truth, good), _predictions(truth, poor),
                                 "good", "poor")
    assert (better.a_only, better.b_only) == (120, 0)  # i odd and not a multiple of 10
    assert better.p_value == pytest.approx(binomtest(120, 120, 0.5).pvalue)
    assert better.distinguishable and better.low > 0.3
    assert better.verdict().startswith("good beats poor by 40.0 points")
    assert "distinguishable from noise" in better.verdict()

    same = compare_predictions(_predictions(truth, good), _predictions(truth, good), "x", "y")
    assert (same.a_only, same.b_only, same.p_value) == (0, 0, 1.0)
    assert not same.distinguishable and (same.low, same.high) == (0.0, 0.0)
    assert "not distinguishable from noise" in same.verdict()

    with pytest.raises(ValueError, match="not scored on the same test tracks"):
        compare_predictions(_predictions(truth, good), _predictions(truth[:-1], good[:-1]))


def test_paired_bootstrap_interval_holds_the_difference():
    a = np.array([1] * 70 + [0] * 30, dtype=bool)
    b = np.array([1] * 60 + [0] * 40, dtype=bool)
    low, high = paired_bootstrap(a, b)
    assert low <= 0.10 <= high and low >= 0 and high <= 0.2


def test_seeds_are_paired_and_tracks_stay_the_unit():
    """Over seeds, per track the share of seeds right: one seed is McNemar's test exactly;
    three seeds of the same answers give the same verdict (no evidence tripled), and a
    track A gets right in 2 of 3 seeds against B's 1 of 3 counts for A once."""
    rng = np.random.default_rng(1)
    truth = list(rng.choice(["rock", "jazz"], 200))
    flip = {"rock": "jazz", "jazz": "rock"}
    a = [t if i % 4 else flip[t] for i, t in enumerate(truth)]  # 75 % right
    b = [t if i % 2 else flip[t] for i, t in enumerate(truth)]  # 50 % right
    one = compare_predictions(_predictions(truth, a), _predictions(truth, b))
    tripled = compare_predictions(*(pd.concat([_predictions(truth, p).assign(seed=s)
                                               for s in (0, 1, 2)]) for p in (a, b)))
    assert (one.n_seeds, tripled.n_seeds) == (1, 3)
    assert (tripled.a_only, tripled.b_only, tripled.p_value) == (one.a_only, one.b_only,
                                                                 one.p_value)
    assert tripled.difference == pytest.approx(one.difference)
    assert "over 3 paired seeds" in tripled.verdict()

    right, wrong = truth[0], flip[truth[0]]
    seeds_a = pd.DataFrame({"track_id": ["t0"] * 3, "seed": [0, 1, 2], "truth": [right] * 3,
                            "predicted": [right, right, wrong]})
    seeds_b = seeds_a.assign(seed=[5, 6, 7], predicted=[wrong, right, wrong])
    mixed = compare_predictions(seeds_a, seeds_b)  # seeds paired in order, not by value
    assert (mixed.a_only, mixed.b_only, mixed.n_tracks) == (1, 0, 1)
    assert mixed.difference == pytest.approx(1 / 3)


def test_layer_sweep_syntax():
    assert expand_layer_sweeps(["a:layer=0-2+b", "c"]) == [
        "a:layer=0+b", "a:layer=1+b", "a:layer=2+b", "c"]
    with pytest.raises(ValueError, match="needs|no stored layers"):
        expand_layer_sweeps(["a:layer=all"])


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A GTZAN-kind library with a 5-layer extractor whose best layer is 2, swept with
    `layer=all` on k-fold over two seeds, plus one plain feature set."""
    store = Store(tmp_path_factory.mktemp("compare") / "store")
    lib = write_synthetic_library(store, "lib", 200, dims={"flat": 4}, separation=0.2)
    write_layered_extractor(store, lib, "layered", layers=5, best_layer=2)
    code, out, err = invoke("bench", "lib", "--features", "layered:layer=all,flat", "--model",
                            "logreg", "--split", "kfold", "--folds", "4", "--seeds", "2",
                            "--store", str(store.root), env={"COLUMNS": "250"})
    assert code == 0, err
    return store, out


def test_sweep_is_one_row_per_layer_with_the_known_best_layer(swept):
    store, out = swept
    assert "accuracy over seeds" in out and "(2 seeds)" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "leaks: a random k-fold split of GTZAN" in warnings[0]
    code, out, err = invoke("leaderboard", "--format", "json", "--store", str(store.root))
    assert code == 0, err
    rows = {r["feature_set"]: r for r in json.loads(out)}
    assert sorted(rows) == ["flat"] + [f"layered:layer={n}" for n in range(5)]
    layers = {int(k.rpartition("=")[2]): r["accuracy"] for k, r in rows.items() if "=" in k}
    assert max(layers, key=layers.get) == 2
    for row in rows.values():
        assert row["seeds"] == 2 and len(json.loads(row["seed_scores"])) == 2
        assert row["leak"].startswith("leaks:") and "--seeds 2" in row["command"]
        assert row["accuracy_seed_std"] >= 0 and len(row["row_id"]) == 32
    code, out, err = invoke("sql", "SELECT seed, count(*) AS n, count(DISTINCT track_id) AS t "
                            "FROM predictions GROUP BY ALL ORDER BY seed", "--format", "json",
                            "--store", str(store.root))
    assert json.loads(out) == [{"seed": 0, "n": 1200, "t": 200}, {"seed": 1, "n": 1200, "t": 200}]


def test_cli_compare_by_id_and_by_feature_set(swept):
    store, _ = swept
    _, out, _ = invoke("leaderboard", "--format", "json", "--store", str(store.root))
    ids = {r["feature_set"]: r["row_id"] for r in json.loads(out)}
    code, out, err = invoke("compare", ids["layered:layer=2"][:8], "flat", "--store",
                            str(store.root), env={"COLUMNS": "250"})
    assert code == 0, err
    assert "layered:layer=2 · logreg beats flat · logreg" in out
    assert "200 test tracks, 2 paired seeds" in out and "over 2 paired seeds" in out
    assert "distinguishable from noise" in out and "not distinguishable" not in out
    code, out, err = invoke("compare", "flat", "flat", "--store", str(store.root))
    assert code == 1 and err.count("\n") == 1 and "the same leaderboard row" in err


def test_compare_refuses_rows_scored_on_other_tracks_in_one_line(swept, tmp_path):
    store, _ = swept
    code, _, err = invoke("bench", "lib", "--features", "flat", "--model", "logreg", "--split",
                          "official", "--store", str(store.root))
    assert code == 0, err
    _, out, _ = invoke("leaderboard", "--format", "json", "--store", str(store.root))
    official = next(r["row_id"] for r in json.loads(out) if r["split"] == "official")
    code, out, err = invoke("compare", official, "layered:layer=1", "--store", str(store.root))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "were not scored on the same test tracks" in err


def test_report_draws_layers_summary_and_comparisons(swept, tmp_path):
    store, _ = swept
    html = write_report(store, "lib", tmp_path / "out").read_text()
    for text in ("img/summary.png", "img/layers.png", "Is the best entry better",
                 "McNemar exact test", "exact sign test over tracks p",
                 "<details class=entry", "leaks", "(2 seeds)"):
        assert text in html, text
