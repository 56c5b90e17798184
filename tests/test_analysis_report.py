"""The HTML report: content, figures, and a real render in headless chromium."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from synthetic_store import write_synthetic_library

from mfs.analysis.benchmark import bench_configs, run_benchmarks
from mfs.analysis.report import _dead_names, write_report
from mfs.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    store = Store(root / "store")
    write_synthetic_library(store, "lib", 200, ("rock", "jazz", "pop"), {"a": 6, "b": 4},
                            separation=1.2)
    configs = (bench_configs("lib", ["a", "a+b"], ["xgboost"], ensemble="both")
               + bench_configs("lib", ["b"], ["logreg"], split="kfold", folds=3))
    run_benchmarks(store, configs)
    return write_report(store, "lib", root / "out")


def test_page_has_leaderboard_figures_statistics_and_provenance(report):
    html = report.read_text()
    for text in ("Leaderboard", "a+b", "a|b", "xgboost", "logreg", "t-interval over 3 folds",
                 "mfs bench lib --features a+b --model xgboost --split official --seed 0",
                 "Per-extractor statistics", "mfs stats a@", "scikit-learn", "dead_dims",
                 "Confusion matrices of the best 4, side by side"):
        assert text in html, text
    side = html.split("<div class=side>")[1].split("</div>")[0]
    assert side.count("<img") == 4 and "src='img/confusion-1.png'" in side
    images = sorted(p.name for p in (report.parent / "img").glob("*.png"))
    assert [n for n in images if n.startswith("confusion")] == [
        f"confusion-{i}.png" for i in range(1, 5)]
    assert len([n for n in images if n.startswith("importance")]) == 3  # XGBoost entries
    for name in images:
        assert (report.parent / "img" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='img/{name}'" in html


def test_dead_dimensions_are_named():
    """A count of dead dimensions says something is wrong; their names say what."""
    stats = pd.DataFrame({"column": ["tags_mean"] * 3, "feature": ["rock", "harp", "opera"],
                          "dead": [False, True, True]})
    assert _dead_names(stats) == "<p>Dead dimensions (2): tags_mean/harp, tags_mean/opera</p>"
    assert _dead_names(stats.assign(dead=False)) == ""
    many = pd.DataFrame({"column": "x", "feature": [str(i) for i in range(45)], "dead": True})
    assert _dead_names(many).endswith("x/39 … and 5 more</p>")


def test_empty_library_report_says_what_to_run(tmp_path):
    store = Store(tmp_path / "store")
    write_synthetic_library(store, "lib", 20, ("x", "y"), {"a": 2})
    html = write_report(store, "lib", tmp_path / "out").read_text()
    assert "run <code>mfs bench</code>" in html and "mfs stats a@" in html
    with pytest.raises(KeyError, match="unknown library"):
        write_report(store, "nope", tmp_path / "out")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs Debian's "
                    "chromium package; `apt-get install -y chromium` to run this here)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,2000", report.as_uri()],
        check=True, capture_output=True, timeout=120)
    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    # A blank or error page is nearly uniform; the report has tables and figures.
    assert np.std(pixels[..., :3]) > 0.1
    assert (pixels[..., :3].mean(axis=2) < 0.5).mean() > 0.01  # some dark ink on the page
