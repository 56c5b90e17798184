"""Prefect's temporary server for one `mfs` process: dies with it, and stays quiet.

Without `PREFECT_API_URL`, Prefect 3.9 starts a temporary API server (a `uvicorn` child,
~190 MB and a port) through the singleton `prefect.server.api.server.SubprocessASGIServer`
the first time a client needs one, and stops it from `atexit`. A SIGKILL or an unhandled
SIGTERM (from `timeout`, an OOM kill) skips `atexit` and leaves the child running under
PID 1. So the CLI starts that singleton itself, from the main thread, as a subclass whose
child asks Linux for a parent-death signal (`prctl(PR_SET_PDEATHSIG)`, kept across exec).
The signal fires when the *thread* that forked the child exits, hence the main thread.
Prefect's own clients then find the singleton running and use it; nothing else changes.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from unittest import mock

from prefect.logging.handlers import PrefectConsoleHandler
from prefect.server.api import server as prefect_server
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent() -> None:
    """Runs in the forked child before exec: SIGTERM it when its parent thread dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ServerDyingWithParent(prefect_server.SubprocessASGIServer):
    """Prefect's temporary server, started so the kernel stops it when we die.

    Prefect builds the server's command in `_run_uvicorn_command`, one `Popen` call; this
    adds only `preexec_fn` to that call, so the command, its environment, the start-up
    wait and the port retry stay Prefect's own.
    """

    def _run_uvicorn_command(self) -> subprocess.Popen:
        popen = partial(subprocess.Popen, preexec_fn=_die_with_parent)
        with mock.patch.object(prefect_server.subprocess, "Popen", popen):
            return super()._run_uvicorn_command()


def start_temporary_server() -> str | None:
    """Start the per-process temporary server now (main thread, dies with us) and return
    its API URL; None, touching nothing, when Prefect is set to use a server of the user's
    (`PREFECT_API_URL`), has the temporary server off, or we are not on Linux."""
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    if not sys.platform.startswith("linux"):
        return None
    server = ServerDyingWithParent()  # the singleton every Prefect client asks for
    server.start()
    return server.api_url


# Loggers of a run's own steps: their INFO lines are for the Prefect UI; in a terminal the
# CLI's progress bar and summary say the same once.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class _NoTracebacks(logging.Filter):
    """Drops error records and tracebacks from the terminal: the CLI prints the error as
    one line; and the runs' INFO lines, which its progress bar already shows. Prefect's API
    handler (the run's logs in Prefect) is a separate handler and still gets them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and record.name.startswith(RUN_LOGGERS):
            return False
        return record.levelno < logging.ERROR and not record.exc_info


@contextmanager
def quiet_console(enabled: bool = True) -> Iterator[None]:
    """While the block runs, keep Prefect's errors, tracebacks and the runs' INFO lines
    off the terminal."""
    handlers = [h for name in (None, "uvicorn", "fastapi")
                for h in logging.getLogger(name).handlers
                if isinstance(h, PrefectConsoleHandler)] if enabled else []
    quiet = _NoTracebacks()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
