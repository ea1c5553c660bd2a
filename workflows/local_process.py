"""This machine's stand-ins for what a cluster provides a run: processes, locks, ports, copies.

The local runner (workflows.local_runner) and the local run (workflows.local_run) use them; none
of them knows about Argo manifests. Steps run as subprocesses in their own session (a killed
step takes its workers with it), their output is echoed line by line, an Argo mutex is a file
lock held for the run, and a port is one the kernel handed out on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Daemon",
    "copy_path",
    "default_lock_dir",
    "free_port",
    "hold_mutexes",
    "run_process",
    "stop_process",
]

#: Heartbeat after this many seconds without output from a running step.
_QUIET_HEARTBEAT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def default_lock_dir() -> Path:
    """Per-user directory for the local stand-in of Argo mutexes."""
    return Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / "llm-baseline-bench-locks"


@contextlib.contextmanager
def hold_mutexes(names: list[str], lock_dir: Path, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold a file lock per Argo mutex name for the whole run, as the controller would."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for name in names:
            path = lock_dir / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")
            handle = stack.enter_context(path.open("w"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                echo(f"waiting for mutex {name!r}: another run uses this target")
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def copy_path(source: Path, dest: Path) -> None:
    """Copy a file or a directory tree to `dest`, creating its parents."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(source, dest)


def _stream(proc: subprocess.Popen[str], prefix: str, echo: Callable[[str], None]) -> None:
    """Echo a step's output line by line; say it is alive when it is quiet for a while."""
    last = [time.monotonic()]
    started = time.monotonic()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            last[0] = time.monotonic()
            echo(f"{prefix} {line.rstrip()}")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(timeout=1.0)
        if time.monotonic() - last[0] >= _QUIET_HEARTBEAT_S:
            echo(f"{prefix} still running ({time.monotonic() - started:.0f} s)")
            last[0] = time.monotonic()


def run_process(
    argv: list[str],
    environ: Mapping[str, str],
    cwd: Path,
    budget_s: float,
    prefix: str,
    echo: Callable[[str], None],
) -> tuple[int, str]:
    """Run `argv` to its end or kill it after `budget_s` (inf: no limit); its output is echoed
    with `prefix`. Returns the exit code (1 when killed at the deadline) and a message."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    timer = threading.Timer(budget_s, proc.kill) if budget_s != float("inf") else None
    if timer is not None:
        timer.start()
    try:
        _stream(proc, prefix, echo)
        exit_code = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    elapsed = time.monotonic() - started
    if exit_code < 0 and elapsed >= budget_s - 1:
        return 1, f"killed after activeDeadlineSeconds ({budget_s:.0f} s)"
    return exit_code, f"exit code {exit_code}" if exit_code else ""


class Daemon:
    """A daemon task's process, its output echoed with `prefix` until `stop` (the DAG ended:
    Argo kills a daemon's pod then)."""

    def __init__(
        self,
        argv: list[str],
        environ: Mapping[str, str],
        cwd: Path,
        prefix: str,
        echo: Callable[[str], None],
    ) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=_stream, args=(self.proc, prefix, echo), daemon=True)
        self._reader.start()

    def stop(self) -> bool:
        """Stop the process if it still runs (True then), read the rest of its output."""
        running = self.proc.poll() is None
        if running:
            stop_process(self.proc)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return running


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """Terminate, then kill after `grace_s`: a hung helper process must not outlive the run."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
