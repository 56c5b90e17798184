"""A killed `mfs extract` leaves no temporary Prefect server behind (flows/prefect_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MFS, write_audio

TESTS = Path(__file__).resolve().parent

SLOW_EXTRACTOR = '''
import os
import time
from pathlib import Path

from energy_extractor import EnergyExtractor


class SlowExtractor(EnergyExtractor):
    """The energy extractor, but each batch takes ten minutes: a run to kill midway. It
    says when the flow reached it (the flow's own log lines stay off the terminal)."""

    name = "slow"

    def embed(self, windows, sample_rate):
        Path(os.environ["SLOW_STARTED"]).touch()
        time.sleep(600)
        return super().embed(windows, sample_rate)
'''


def processes_with(variable: str) -> list[int]:
    """Live processes whose environment holds `variable` (NAME=value) exactly."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if variable.encode() in environ:
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s")
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("kill_with", [signal.SIGKILL, signal.SIGTERM])
def test_killed_extract_leaves_no_prefect_server(tmp_path: Path, kill_with: int) -> None:
    (tmp_path / "slow_extractor.py").write_text(SLOW_EXTRACTOR)
    write_audio(tmp_path / "music" / "one.wav", seconds=1.0)
    home = f"PREFECT_HOME={tmp_path / 'prefect'}"  # unique to this run: finds its processes
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MFS_STORE")}
    env.update(dict([home.split("=", 1)]), PYTHONPATH=f"{tmp_path}:{TESTS}",
               MFS_EXTRACTORS="slow=slow_extractor:SlowExtractor",
               PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
               SLOW_STARTED=str(tmp_path / "started"))
    store = str(tmp_path / "store")
    scan = subprocess.run([str(MFS), "scan", str(tmp_path / "music"), "--kind", "folder",
                           "--name", "lib", "--store", store], env=env, capture_output=True)
    assert scan.returncode == 0, scan.stderr
    log = tmp_path / "extract.log"
    with open(log, "wb") as out:
        mfs = subprocess.Popen([str(MFS), "extract", "lib", "-e", "slow", "--store", store],
                               env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (tmp_path / "started").exists() or mfs.poll() is not None,
                 180, "the flow did not start")
        assert mfs.poll() is None, log.read_text()
        server = [pid for pid in processes_with(home) if pid != mfs.pid]
        assert server, "no temporary Prefect server child found"
        os.kill(mfs.pid, kill_with)
        mfs.wait(timeout=30)
        wait_for(lambda: not processes_with(home), 10, "processes of the run are still alive")
    finally:
        for pid in processes_with(home):
            os.kill(pid, signal.SIGKILL)
        if mfs.poll() is None:
            mfs.kill()
