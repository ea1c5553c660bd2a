"""steps.load.supervisor: the main process's bookkeeping of worker processes (real processes,
pipes)."""

from __future__ import annotations

import io
import multiprocessing as mp
from multiprocessing.connection import Connection

from steps.load.live_progress import Progress
from steps.load.supervisor import Supervisor


def _finish_and_exit(conn: Connection) -> None:
    conn.send(("finished", 0.5, 3, 0))
    conn.close()


def test_supervisor_worker_exit_seen_first_still_reads_its_finished_message() -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_finish_and_exit, args=(child,), daemon=True)
    proc.start()
    child.close()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    supervisor = Supervisor([proc], [parent], Progress(1, stream=io.StringIO()))
    # the exit sentinel handled before the pipe: its message must not be lost
    supervisor.worker_exited(0)
    assert supervisor.finished == {0: (0.5, 3)}
    assert not supervisor.alive
    assert supervisor.lost_workers() == []
