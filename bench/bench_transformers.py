"""The transformer families on full-size models: our pipeline against the loop a notebook
runs, the model's FLOP rate against this machine's matrix-product rates, and the memory of
an hour-long track.

For each family whose extractor is registered (the others are skipped with a note), the
full-size architecture from its published config is built with random weights (the same
cost as the real weights) and saved in Hugging Face's layout, config.json +
preprocessor_config.json + model.safetensors, under `<family folder>` of a temporary
`$MFS_MODELS` tree, so the extractor finds and loads it through its real path. Then, on
real 30 s GTZAN tracks (`../shared/data/gtzan-full`), in the same run:

* notebook (the baseline): one track at a time, decoded and resampled (the pipeline's own
  decoder and soxr, so the baseline loses nothing to a slower loader), the model's own
  Hugging Face feature extractor, the fp32 model under `torch.no_grad`, the mean of the
  last hidden state (EnCodec: of the encoder's latent; CLAP: `get_audio_features`). This
  is what the model card's snippet does: AST's and CLAP's feature extractors keep only the
  first 10.24 s / a 10 s crop of a 30 s track, so their notebook does less work per track
  than the pipeline, which covers every sample. For those two a second notebook does the
  same work as the pipeline: the track cut into consecutive 10.24 s / 10 s pieces, all of
  them through the feature extractor and the model in one call ("whole-track notebook");
* model only: the extractor's `embed` over the track's windows, decoded and cut
  beforehand, in batches of `--batch-size`, under its resolved precision: the most the
  pipeline can reach; once per `--precision` (default `float32,auto`: float32, then
  bfloat16 where the CPU runs it natively), each against the same notebook loop;
* pipeline: `run_extract` (what `mfs extract` runs, without Prefect): plan, decode,
  resample, windows, batches, model, pooling, Parquet parts, in a fresh store.

The three run back to back in each of `--repeats` rounds, so each round's ratios share
the machine's speed of the moment (on this shared VM it drifts by up to 20 % within
minutes); the per-round ratios and their median are printed.

Reported per family: tracks/s of each, pipeline / notebook (target >= 2x), pipeline /
model only (target >= 0.90), the model's FLOPs (torch's `FlopCounterMode` on one window,
LSTMs added from their shapes since it does not count them) per wall second and per CPU
second against a big `torch.mm` loop in bfloat16 and float32 measured in the same run
(target for MERT-v1-330M: >= 70 % of the bfloat16 rate, meant for a CPU that computes
bfloat16 natively; without AVX-512 BF16/AMX it is emulated and far below float32).
`--memory-minutes M` also runs one M-minute track (real GTZAN music repeated, as in
bench_memory.py) through `--memory-family` in a fresh process and reports its peak RSS.

    .venv/bin/python bench/bench_transformers.py                  # every family, 2 tracks, 1 pair
    .venv/bin/python bench/bench_transformers.py --family encodec-24khz
    .venv/bin/python bench/bench_transformers.py --tracks 10 --repeats 3 --memory-minutes 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_extract import Timing, timed  # noqa: E402
from bench_memory import CHILD_PRELUDE, music, write_track  # noqa: E402
from model_bench import (  # noqa: E402
    full_clips,
    lowest_cosine,
    machine_rates,
    model_only,
    pipeline,
    precisions,
    window_flops,
    window_outputs,
    with_precision,
)

from mfs.extractors import registry  # noqa: E402
from mfs.extractors.pipeline import keep_freed_memory, load_mono  # noqa: E402
from mfs.extractors.windowing import cut_windows  # noqa: E402

# HuBERT-large-style front end: 7 convs of 512 channels, total stride 320.
CONV = {"conv_dim": [512] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
        "conv_kernel": [10, 3, 3, 3, 3, 2, 2]}
LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
         "intermediate_size": 4096, "layer_norm_eps": 1e-5, "do_stable_layer_norm": True,
         "feat_extract_norm": "layer", "conv_bias": True, **CONV}
W2V_PREPROCESSOR = {"feature_size": 1, "padding_value": 0.0, "do_normalize": True,
                    "return_attention_mask": True}


def _last_hidden_mean(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    return model(**inputs).last_hidden_state.mean(dim=1)


def _encodec_latent_mean(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    return model.encoder(inputs["input_values"]).mean(dim=-1)


def _ast_logits(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    return model(**inputs).logits  # the model card's snippet


def _clap_audio_features(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    return model.get_audio_features(**inputs)


@dataclass(frozen=True)
class Family:
    """A registered extractor's full-size model as published: the transformers config and
    model classes with the published values, config.json keys the published file has
    beyond them, the feature extractor a notebook uses, and what the notebook keeps."""

    config_class: str
    model_class: str
    config: dict
    feature_extractor: str
    preprocessor: dict
    notebook: Callable[[torch.nn.Module, dict], torch.Tensor] = _last_hidden_mean
    config_json: dict = field(default_factory=dict)
    note: str = ""
    # For a model whose feature extractor keeps one crop of a track (AST, CLAP): the input
    # length in seconds of a second notebook, which covers the whole track as the extractor
    # does (consecutive pieces of this length, the last one shorter, all in one call).
    whole_track_seconds: float | None = None


FAMILIES: dict[str, Family] = {
    # MERT's own classes are remote code; its config.json loads into HubertConfig, whose
    # graph is the one MERT runs at inference (../shared/notes/models.md).
    "mert-v1-330m": Family(
        "HubertConfig", "HubertModel", LARGE, "Wav2Vec2FeatureExtractor",
        {**W2V_PREPROCESSOR, "sampling_rate": 24000},
        config_json={"architectures": ["MERTModel"], "sample_rate": 24000,
                     "attention_relax": 32.0, "deepnorm": False,
                     "feature_extractor_cqt": False},
        note="conv_bias and preprocessor do_normalize assumed (not in models.md)"),
    "mert-v1-95m": Family(
        "HubertConfig", "HubertModel",
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
         "intermediate_size": 3072, "do_stable_layer_norm": False,
         "feat_extract_norm": "group", "conv_bias": False, **CONV},
        "Wav2Vec2FeatureExtractor", {**W2V_PREPROCESSOR, "sampling_rate": 24000},
        config_json={"architectures": ["MERTModel"], "sample_rate": 24000,
                     "attention_relax": -1.0, "deepnorm": False,
                     "feature_extractor_cqt": False},
        note="conv_bias and preprocessor do_normalize assumed (not in models.md)"),
    "hubert-large": Family(
        "HubertConfig", "HubertModel", LARGE, "Wav2Vec2FeatureExtractor",
        {**W2V_PREPROCESSOR, "sampling_rate": 16000},
        config_json={"architectures": ["HubertModel"]}),
    "wav2vec2-large": Family(
        "Wav2Vec2Config", "Wav2Vec2Model", LARGE, "Wav2Vec2FeatureExtractor",
        {**W2V_PREPROCESSOR, "sampling_rate": 16000},
        config_json={"architectures": ["Wav2Vec2Model"]},
        note="the lv60 layout assumed (stable layer norm, conv bias)"),
    # ASTConfig's defaults are MIT/ast-finetuned-audioset-10-10-0.4593's values.
    # The AudioSet head (527 classes) is part of the checkpoint the extractor loads.
    "ast": Family("ASTConfig", "ASTForAudioClassification", {"num_labels": 527},
                  "ASTFeatureExtractor", {}, notebook=_ast_logits,
                  config_json={"architectures": ["ASTForAudioClassification"]},
                  note="notebook: the feature extractor keeps the first 10.24 s",
                  whole_track_seconds=10.24),
    # larger_clap_music's audio tower is HTSAT-base: ClapConfig's defaults (HTSAT-tiny)
    # with these three values, as diffusers' MusicLDM conversion sets them for LAION's
    # music CLAP; fusion off (ClapAudioConfig's default). Established offline from that
    # script, not from the hub's config.json.
    "clap-music": Family(
        "ClapConfig", "ClapModel",
        {"audio_config": {"patch_embeds_hidden_size": 128, "hidden_size": 1024,
                          "depths": [2, 2, 12, 2]}},
        "ClapFeatureExtractor", {"truncation": "rand_trunc"}, notebook=_clap_audio_features,
        config_json={"architectures": ["ClapModel"]},
        note="HTSAT-base audio config and rand_trunc assumed (an unfused model takes one "
             "mel input, not fusion's four); notebook: one random 10 s crop",
        whole_track_seconds=10.0),
    # EncodecConfig's defaults are facebook/encodec_24khz's values.
    "encodec-24khz": Family("EncodecConfig", "EncodecModel", {}, "EncodecFeatureExtractor",
                            {"feature_size": 1, "sampling_rate": 24000},
                            notebook=_encodec_latent_mean,
                            config_json={"architectures": ["EncodecModel"]}),
}


# --- the full-size model on disk --------------------------------------------------------
def save_full_size(name: str, family: Family, root: Path) -> tuple[torch.nn.Module, object]:
    """The random-weight full-size model saved where the extractor looks under
    `$MFS_MODELS=root`; returns the model (fp32, eval) and the feature extractor."""
    import transformers

    source = registry.create(name).source
    folder = root / source.folders[0]
    torch.manual_seed(0)
    config = getattr(transformers, family.config_class)(**family.config)
    model = getattr(transformers, family.model_class)(config).eval()
    model.save_pretrained(folder)
    extractor = getattr(transformers, family.feature_extractor)(**family.preprocessor)
    extractor.save_pretrained(folder)
    path = folder / "config.json"
    published = {**json.loads(path.read_text()), **family.config_json,
                 "model_type": source.model_types[0]}
    path.write_text(json.dumps(published, indent=2))
    return model, extractor


# --- the three ways through the tracks ----------------------------------------------------
def notebook_loop(model: torch.nn.Module, feature_extractor: object, family: Family,
                  clips: list[Path], whole_track: bool = False) -> Timing:
    """One track at a time: decode + resample, feature extractor, fp32 model, mean. With
    `whole_track`, the track cut into consecutive pieces of `family.whole_track_seconds`
    (the last one what is left), all passed to the feature extractor and the model in
    one call: what a notebook does to see all of a track through a fixed-length model."""
    rate = feature_extractor.sampling_rate

    def one(clip: Path) -> None:
        audio, _ = load_mono(clip, rate)
        if whole_track:
            size = round(family.whole_track_seconds * rate)
            audio = [audio[start:start + size] for start in range(0, len(audio), size)]
        inputs = feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
        with torch.no_grad():
            family.notebook(model, dict(inputs))

    one(clips[0])  # warm-up: first-call allocations and thread start
    with timed() as timing:
        for clip in clips:
            one(clip)
    return timing[0]


MEMORY_CHILD = CHILD_PRELUDE + """from mfs.extractors import registry
from mfs.extractors.pipeline import RowBuilder, extract_rows

name, warm, path, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extractor = registry.create_from_spec(name)
extractor.load(torch.device("cpu"))
builder = RowBuilder(extractor, "bench")
list(extract_rows(builder, [("warm", Path(warm))], batch_size=batch))
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # VmHWM := VmRSS: the load and warm-up peaks are forgotten
before = status("VmRSS")
start = time.perf_counter()
[row] = list(extract_rows(builder, [("long", Path(path))], batch_size=batch))
print(json.dumps({"before": before, "peak": status("VmHWM"), "n_windows": row["n_windows"],
                  "precision": extractor.precision,
                  "seconds": row["seconds"], "wall": time.perf_counter() - start}))
"""


def long_track_memory(name: str, minutes: float, batch_size: int, work: Path) -> dict:
    """Peak RSS of one `minutes`-long track through `extract_rows`, in a fresh process,
    after a 30 s warm-up track (model loaded, buffers grown)."""
    import soundfile as sf

    warm = work / "warm-30s.wav"
    sf.write(warm, music(30.0), 22050, subtype="PCM_16")
    path = write_track(work, minutes, 22050)
    child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, name, str(warm), str(path),
                            str(batch_size)], capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"memory run of {name} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


# --- the run ----------------------------------------------------------------------------
def bench_family(name: str, family: Family, args: argparse.Namespace,
                 root: Path) -> list[dict]:
    """Per `--precision`, rounds of notebook loop(s), model only and pipeline, back to
    back on the same tracks; one result per precision."""
    clips = full_clips(args.tracks)
    model, feature_extractor = save_full_size(name, family, root)
    params = sum(p.numel() for p in model.parameters())
    results = []
    for precision in precisions(args.precision):
        spec = with_precision(name, precision)
        extractor = registry.create_from_spec(spec)
        where = extractor.found.where
        if where != "$MFS_MODELS" or root not in extractor.found.directory.parents:
            raise SystemExit(f"{name}: found {extractor.found.directory} ({where}), not the "
                             f"bench's model under {root}")
        extractor.load(torch.device("cpu"))
        notebooks, wholes, models, pipes = [], [], [], []
        for _ in range(args.repeats):  # back to back, so all share the load of the moment
            notebooks.append(notebook_loop(model, feature_extractor, family, clips))
            if family.whole_track_seconds:
                wholes.append(notebook_loop(model, feature_extractor, family, clips,
                                            whole_track=True))
            timing, n_windows = model_only(extractor, clips, args.batch_size)
            models.append(timing)
            pipes.append(pipeline(spec, clips, args.batch_size))
        window = cut_windows(load_mono(clips[0], extractor.sample_rate)[0],
                             extractor.sample_rate, extractor.windowing)[0]
        flops = window_flops(extractor, window) * n_windows
        cosine = {} if extractor.precision == "float32" else lowest_cosine(
            window_outputs(extractor, clips[0], "float32"), window_outputs(extractor, clips[0]))
        results.append({
            "name": name, "params": params, "precision": extractor.precision,
            "tracks": len(clips), "windows": n_windows,
            "notebook": min(notebooks, key=lambda t: t.wall),
            "whole_track_notebook": min(wholes, key=lambda t: t.wall) if wholes else None,
            "ratios": [nb.wall / p.wall for nb, p in zip(notebooks, pipes, strict=True)],
            "whole_ratios": [w.wall / p.wall for w, p in zip(wholes, pipes, strict=False)],
            "model": min(models, key=lambda t: t.wall),  # best of each side; pairs printed
            "pipeline": min(pipes, key=lambda t: t.wall),
            "pairs": [m.wall / p.wall for m, p in zip(models, pipes, strict=True)],
            "gflop": flops / 1e9, "note": family.note, "cosine": cosine})
        del extractor
    del model
    return results


def report(results: list[dict], rates: dict[str, tuple[float, float]]) -> None:
    print("\n| family | params | precision | windows/track | notebook tracks/s | "
          "model only tracks/s | pipeline tracks/s | pipeline / notebook | "
          "pipeline / model only | GFLOP/track | model GFLOP/s (wall) | of bf16 mm | "
          "of fp32 mm | model GFLOP per CPU s | of bf16 mm | of fp32 mm |")
    print("|---" * 16 + "|")
    bf_wall, bf_cpu = rates["bfloat16"]
    fp_wall, fp_cpu = rates["float32"]
    for r in results:
        n, gflop = r["tracks"], r["gflop"]
        nb, mo, pl = (n / r[k].wall for k in ("notebook", "model", "pipeline"))
        wall_rate, cpu_rate = gflop / r["model"].wall, gflop / r["model"].cpu
        print(f"| {r['name']} | {r['params'] / 1e6:.0f}M | {r['precision']} | "
              f"{r['windows'] / n:.1f} | {nb:.3f} | {mo:.3f} | {pl:.3f} | {pl / nb:.2f}x | "
              f"{pl / mo:.2f} | {gflop / n:.0f} | {wall_rate:.1f} | {wall_rate / bf_wall:.0%} | "
              f"{wall_rate / fp_wall:.0%} | {cpu_rate:.1f} | {cpu_rate / bf_cpu:.0%} | "
              f"{cpu_rate / fp_cpu:.0%} |")
    for r in results:
        if whole := r["whole_track_notebook"]:
            rate = r["tracks"] / whole.wall
            print(f"{r['name']}: whole-track notebook (the track in consecutive "
                  f"{FAMILIES[r['name']].whole_track_seconds:g} s pieces, one call) "
                  f"{rate:.3f} tracks/s, CPU s {whole.cpu:.1f}: **pipeline / whole-track "
                  f"notebook {r['tracks'] / r['pipeline'].wall / rate:.2f}x** (per "
                  f"back-to-back repeat [{', '.join(f'{x:.2f}' for x in r['whole_ratios'])}], "
                  f"median {statistics.median(r['whole_ratios']):.2f})")
    for r in results:
        pairs = ", ".join(f"{p:.2f}" for p in r["pairs"])
        note = f"; {r['note']}" if r["note"] else ""
        if r["cosine"]:
            note += "; lowest cosine to float32 over the first track's windows: " + ", ".join(
                f"{name} {value:.4f}" for name, value in r["cosine"].items())
        ratios = ", ".join(f"{x:.2f}" for x in r["ratios"])
        print(f"{r['name']}: pipeline / notebook per back-to-back repeat [{ratios}], median "
              f"{statistics.median(r['ratios']):.2f}; model only / pipeline wall per pair "
              f"[{pairs}], median {statistics.median(r['pairs']):.2f}; CPU s "
              f"notebook {r['notebook'].cpu:.1f}, model {r['model'].cpu:.1f}, pipeline "
              f"{r['pipeline'].cpu:.1f} (with its model load){note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    parser.add_argument("--tracks", type=int, default=2, help="30 s GTZAN tracks (at most 10)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", default="float32,auto",
                        help="comma list of precisions to time (or `default`: the "
                             "extractor's default config), each against the same notebook")
    parser.add_argument("--memory-minutes", type=float, default=0.0,
                        help="also run one track this long through --memory-family")
    parser.add_argument("--memory-family", choices=list(FAMILIES), default="mert-v1-330m")
    args = parser.parse_args()
    full_clips(1)  # fails early, in one line, without the real tracks
    names = list(FAMILIES) if args.family == "all" else [args.family]
    known = registry.all_extractors()
    for name in names:
        if name not in known:
            print(f"{name}: skipped, no extractor registered under that name yet")
    names = [name for name in names if name in known]
    keep_freed_memory()  # as extract_rows does, for every side
    with tempfile.TemporaryDirectory(prefix="mfs-bench-models-") as folder:
        work = Path(folder)
        os.environ.update({"MFS_MODELS": str(work / "models"), "HF_HUB_OFFLINE": "1",
                           "HF_HUB_CACHE": str(work / "empty-hub"),
                           "PREFECT_HOME": str(work / "prefect")})
        rates = machine_rates()
        results = []
        for name in names:
            started = time.perf_counter()
            try:
                done = bench_family(name, FAMILIES[name], args, work / "models")
            except Exception as error:  # noqa: BLE001 - one family's failure, the rest go on
                print(f"{name}: FAILED: {type(error).__name__}: {error}", flush=True)
                shutil.rmtree(work / "models", ignore_errors=True)
                continue
            results.extend(done)
            print(f"{name}: done in {time.perf_counter() - started:.0f} s", flush=True)
            report(done, rates)  # as it goes: a later family cannot lose this one
            if args.memory_minutes and name == args.memory_family:
                spec = with_precision(name, precisions(args.precision)[-1])
                memory = long_track_memory(spec, args.memory_minutes, args.batch_size, work)
                print(f"{name} ({memory['precision']}), one {args.memory_minutes:g}-minute "
                      f"track: peak RSS "
                      f"{memory['peak'] / 2**20:.0f} MiB, {memory['before'] / 2**20:.0f} MiB "
                      f"after the warm-up, growth {(memory['peak'] - memory['before']) / 2**20:.0f}"
                      f" MiB, {memory['n_windows']} windows in {memory['wall']:.0f} s")
            shutil.rmtree(work / "models", ignore_errors=True)  # GBs per family
        if results:
            report(results, rates)
        load = os.getloadavg()
        print(f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
        if results and (args.tracks < 10 or args.repeats < 3):
            print("(fewer than 10 tracks or 3 pairs: a quick check, not a result)")


if __name__ == "__main__":
    main()
