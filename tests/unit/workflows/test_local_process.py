"""This machine's stand-ins for a cluster: a stopped helper process, a free port."""

from __future__ import annotations

import socket
import subprocess
import sys

from workflows.local_process import free_port, stop_process


def test_stop_process_ignoring_sigterm_is_killed() -> None:
    code = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    stop_process(proc, grace_s=0.2)
    assert proc.returncode == -9
    proc.stdout.close()


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
