"""Shared helpers for the store and scan tests: synthetic audio, scans, and reading results.

Synthetic fixtures are made in each test's tmp_path. Real material (GTZAN, FMA metadata)
lives in ../shared/data beside the checkout; tests that need it skip when it is absent.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from mfs.libraries.fingerprint import fingerprint
from mfs.store import Store, schema

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MFS = REPO / ".venv" / "bin" / "mfs"


def shared(relative: str) -> Path:
    """A folder of real test material, or skip the test when the checkout has none."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real test material {path} is absent (see shared/data/README.md)")
    return path


def tone(seconds: float = 0.5, rate: int = 22050, channels: int = 1,
         freq: float = 440.0) -> np.ndarray:
    """A sine with a little seeded noise: different `freq` gives different file bytes."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(freq * 1000))
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def write_audio(path: Path, seconds: float = 0.5, rate: int = 22050, channels: int = 1,
                freq: float = 440.0, **soundfile_args) -> Path:
    """Write a real audio file whose format soundfile takes from the extension (or args)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, rate, channels, freq), rate, **soundfile_args)
    return path


def write_m4a(path: Path, seconds: float = 0.5, rate: int = 22050, freq: float = 440.0) -> Path:
    """AAC in an MP4 container, which libsndfile cannot write: encode it with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    samples = tone(seconds, rate, 1, freq).T.copy()
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def content_id(library: str, path: Path) -> str:
    """The folder-library ID the store contract promises: library + 16 hex of the audio
    fingerprint (BLAKE2b-128 of the audio payload, tags left out)."""
    return f"{library}:{fingerprint(path)[:16]}"


def scan(store: Store, name: str, kind: str | None = None, root: Path | None = None,
         **options) -> dict:
    from mfs.flows.scan import run_scan

    return run_scan(store, name, kind, root, **options)


def rows(store: Store, sql: str, params: list | None = None) -> list[dict]:
    """Query the store's DuckDB views (as `mfs sql` does) and return dicts."""
    result = store.connect().execute(sql, params or [])
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def tracks(store: Store, library: str) -> dict[str, dict]:
    """A library's tracks keyed by track_id, read through the `tracks` view."""
    found = rows(store, "SELECT * FROM tracks WHERE library = ?", [library])
    return {row["track_id"]: row for row in found}


def failures(store: Store, library: str | None = None) -> list[dict]:
    sql = "SELECT * FROM failures_latest" + (" WHERE library = ?" if library else "")
    return rows(store, sql + " ORDER BY path", [library] if library else [])


def slow_energy_script(store: Store, settings: str, seconds_per_part: float | None = None
                       ) -> str:
    """Python source of a process that runs `run_extract` of the test `energy` extractor
    over library `lib`, 0.3 s per track (decoding is slowed), for tests that kill it or
    watch its parts appear. `settings` is the `ExtractSettings(...)` arguments."""
    flush = f"extract.SECONDS_PER_PART = {seconds_per_part!r}\n" if seconds_per_part else ""
    return f"""import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from mfs.extractors import registry, pipeline
from mfs.flows import extract
from mfs.store import Store
registry.EXTRACTORS["energy"] = "energy_extractor:EnergyExtractor"
real = pipeline.open_audio
def slow(path):
    time.sleep(0.3)
    return real(path)
pipeline.open_audio = slow
{flush}extract.run_extract(Store({str(store.root)!r}), "lib", ["energy"],
                    extract.ExtractSettings({settings}))
"""


def run_mfs(*args: str, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed `mfs` command as a user would (`env` adds variables)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("MFS_STORE", "COLUMNS")}
    full_env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **(env or {}))
    return subprocess.run([str(MFS), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run an `mfs` command in this process (fast): exit code, stdout, stderr."""
    from typer.testing import CliRunner

    from mfs.cli import app

    result = CliRunner().invoke(app, list(args), env={"MFS_STORE": None, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, with an empty Hugging Face cache in the test's tmp_path and no `$MFS_MODELS`:
    a model is found only where the test puts it."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MFS_MODELS", raising=False)


@pytest.fixture(scope="session")
def models_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An `$MFS_MODELS` tree of random checkpoints in the official file layouts of PANNs
    CNN14 (32 and 16 kHz) and VGGish (tests/cnn_weights.py), written once per session."""
    from cnn_weights import write_models_tree

    return write_models_tree(tmp_path_factory.mktemp("models"), sample_rates=(32000, 16000))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def feature_rows(track_ids: list[str]) -> pa.Table:
    """A minimal valid feature batch (extractor `toy`, config `c0`) for the given tracks."""
    n = len(track_ids)
    table = pa.Table.from_pydict({
        "track_id": track_ids, "extractor": ["toy"] * n, "config_hash": ["c0"] * n,
        "config": ["{}"] * n, "n_windows": [1] * n, "seconds": [1.0] * n,
        "model_hash": ["none"] * n, "precision": ["none"] * n, "versions": ["{}"] * n,
        "created_at": [datetime.now(UTC)] * n, "run_id": ["r"] * n,
    }, schema=schema.FEATURE_KEY_AND_PROVENANCE)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array([0.5] * (2 * n), pa.float32()), 2)
    return table.append_column(pa.field("emb_mean", schema.embedding_type(2)), vectors)


# A real Prefect server for a test: free loopback port, the test's own PREFECT_HOME.

TESTS = Path(__file__).resolve().parent
PREFECT = Path(sys.executable).parent / "prefect"


@pytest.fixture
def prefect_env(tmp_path) -> dict:
    """Environment for `mfs`/`prefect` subprocesses: the test's PREFECT_HOME and store, and
    the test energy extractor registered."""
    return {**os.environ, "PYTHONPATH": str(TESTS), "PREFECT_HOME": str(tmp_path / "prefect"),
            "MFS_EXTRACTORS": "energy=energy_extractor:EnergyExtractor",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MFS_STORE": str(tmp_path / "store"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, seconds: float = 10) -> None:
    """SIGTERM the process group started with `start_new_session`, then SIGKILL it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@pytest.fixture
def prefect_server(prefect_env):
    """`prefect server start` on 127.0.0.1; yields its API URL."""
    port = free_port()
    server = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1",
         "--port", str(port), "--no-ui"],
        env=prefect_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180  # a fresh database on a loaded machine: 10-90 s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        stop_group(server, 0)
        pytest.fail("prefect server did not start within 180 s")
    yield url
    stop_group(server)


def wait(what: str, seconds: float, probe):
    """`probe()`'s first truthy value, polled; the test fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s")
        time.sleep(0.3)
    return found


# What Prefect's own client retries: a busy server (its SQLite locked by a worker's
# writes) answers 503 for a moment; CI saw one such answer fail a test.
RETRIED_STATUSES = (429, 502, 503)


def api_call(request: urllib.request.Request | str, attempts: int = 6) -> list[dict] | dict:
    """The JSON answer of a Prefect API request, retried with backoff as Prefect's client
    retries it."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUSES or attempt == attempts - 1:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def api_post(url: str, path: str, body: dict | None = None) -> list[dict] | dict:
    request = urllib.request.Request(f"{url}/{path}", data=json.dumps(body or {}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    return api_call(request)


def api_get(url: str, path: str) -> list[dict] | dict:
    return api_call(f"{url}/{path}")
