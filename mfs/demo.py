"""The built-in demo: a small synthetic library, made here, with four made-up "genres".

The clips are synthesised (no real music): each genre has its own rhythm and timbre so
that features can tell them apart. They are laid out like GTZAN, with split lists, so the
demo runs the same code paths as a real dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from mfs.console import bar_progress, console
from mfs.store import Store

SAMPLE_RATE = 22050
CLIP_SECONDS = 8.0
CLIPS_PER_GENRE = 10
GENRES = ("pulse", "drone", "chirp", "clatter")
SPLIT_OF_INDEX = ["train"] * 6 + ["valid"] * 2 + ["test"] * 2


def synthesise(genre: str, rng: np.random.Generator) -> np.ndarray:
    """One clip of `genre`: pulse = kick + bass, drone = slow chords, chirp = rising
    sweeps, clatter = noise bursts on an off-beat."""
    t = np.arange(int(SAMPLE_RATE * CLIP_SECONDS)) / SAMPLE_RATE
    tempo = rng.uniform(*{"pulse": (110, 130), "drone": (40, 50), "chirp": (80, 100),
                          "clatter": (150, 175)}[genre])
    beat = 60.0 / tempo
    phase = (t % beat) / beat
    if genre == "pulse":
        kick = np.sin(2 * np.pi * 55 * t * (1 + 2 * np.exp(-phase * 20))) * np.exp(-phase * 8)
        bass = 0.3 * np.sin(2 * np.pi * rng.uniform(40, 60) * t)
        audio = kick + bass
    elif genre == "drone":
        root = rng.uniform(110, 220)
        audio = sum(np.sin(2 * np.pi * root * r * t + rng.uniform(0, 6)) / (i + 1)
                    for i, r in enumerate((1, 1.25, 1.5, 2)))
        audio = audio * (0.6 + 0.4 * np.sin(2 * np.pi * t / 4))
    elif genre == "chirp":
        f0 = rng.uniform(300, 600)
        audio = np.sin(2 * np.pi * f0 * (1 + phase) * t) * np.exp(-phase * 3)
    else:
        bursts = rng.standard_normal(len(t)) * np.exp(-((phase + 0.5) % 1.0) * 30)
        audio = bursts + 0.2 * np.sin(2 * np.pi * rng.uniform(2000, 4000) * t) * (phase < 0.1)
    audio = audio + 0.01 * rng.standard_normal(len(t))
    return (0.5 * audio / np.max(np.abs(audio))).astype(np.float32)


def build_demo_library(folder: Path) -> tuple[Path, Path]:
    """Write the 40 clips and split lists under `folder` (idempotent, seeded)."""
    genres_dir, splits_dir = folder / "genres", folder / "splits"
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for g, genre in enumerate(GENRES):
        (genres_dir / genre).mkdir(parents=True, exist_ok=True)
        for index in range(CLIPS_PER_GENRE):
            path = genres_dir / genre / f"{genre}.{index:05d}.wav"
            if not path.exists():
                rng = np.random.default_rng(1000 * g + index)
                sf.write(path, synthesise(genre, rng), SAMPLE_RATE, subtype="PCM_16")
            splits[SPLIT_OF_INDEX[index]].append(f"{genre}/{path.name}")
    splits_dir.mkdir(parents=True, exist_ok=True)
    for split, lines in splits.items():
        (splits_dir / f"{split}_filtered.txt").write_text("\n".join(lines) + "\n")
    return genres_dir, splits_dir


DEMO_EXTRACTORS = ["fma518", "musicnn-mtt"]


def run_demo(store: Store, folder: Path) -> None:
    """Write the demo library, scan it, and extract features through the Prefect flow."""
    from mfs.flows.extract import displayed, extract_library
    from mfs.flows.prefect_server import quiet_console
    from mfs.flows.scan import run_scan

    genres_dir, splits_dir = build_demo_library(folder)
    console.print(
        f"demo: {len(GENRES) * CLIPS_PER_GENRE} synthetic clips ({CLIP_SECONDS:.0f} s each) in "
        f"{len(GENRES)} made-up genres ({', '.join(GENRES)}) written to {genres_dir}; "
        "they are generated test signals, not real music"
    )
    summary = run_scan(store, "demo", "gtzan", genres_dir, split_dir=splits_dir)
    console.print(f"demo: scanned {summary['tracks']} tracks into {store.root}")
    console.print(f"demo: extracting {', '.join(DEMO_EXTRACTORS)} (Prefect flow extract-library)")
    with quiet_console(), displayed(bar_progress):
        result = extract_library("demo", DEMO_EXTRACTORS, store=str(store.root), rescan=False)
    for name, counts in result["extractors"].items():
        console.print(f"demo: {name}: {counts['ok']} tracks extracted, {counts['failed']} failed")
