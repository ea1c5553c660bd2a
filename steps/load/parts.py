"""A worker's part files: its record buffer written about once a second, no record ever dropped.

A part that cannot be written (EMFILE, ENOSPC, EIO) is held and retried, oldest first, on every
flush: a full disk may be freed, file descriptors released. What is still held when the worker
ends is handed to the main process with the error (`PartWriter.hand_over`), so the run can write
it itself or say exactly how many records are lost (`steps.load.run.keep_unwritten`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from steps.load.writer import RecordBuffer, prime_parquet, write_part

__all__ = ["PartWriter", "Unwritten"]

log = logging.getLogger(__name__)

#: The pipe message that hands held records over: ("unwritten", table, why the write failed).
Unwritten = tuple[str, pa.Table, str | None]


class PartWriter:
    """One worker's part files: their sequence, the tables held from failed writes, the error.

    Parquet encoding runs in one writer thread (pyarrow drops the GIL), off the event loop, and
    is awaited: a table leaves the held list only once its part file is in place. Only flushes
    cost anything here; recording a request stays an append to the `RecordBuffer`.
    """

    def __init__(self, parts_dir: Path, worker: int) -> None:
        self.parts_dir = parts_dir
        self.worker = worker
        #: Records in part files this worker wrote.
        self.written = 0
        #: Why the last write failed; None once a write succeeds again.
        self.error: str | None = None
        self._held: list[pa.Table] = []  # taken from the buffer, not yet in a part file
        self._seq = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parts")

    @property
    def held_rows(self) -> int:
        """Records taken from the buffer that no part file holds yet."""
        return sum(t.num_rows for t in self._held)

    async def prime(self, table: pa.Table) -> None:
        """Encode `table` once in the writer thread, before t0 (pyarrow sets up lazily)."""
        await asyncio.get_running_loop().run_in_executor(self._thread, prime_parquet, table)

    async def flush(self, buffer: RecordBuffer | None) -> None:
        """Write what `buffer` holds and every table held from failed writes, oldest first."""
        if buffer is not None and len(buffer):
            self._held.append(buffer.take_table())
        loop = asyncio.get_running_loop()
        while self._held:
            table = self._held[0]
            seq = self._seq + 1
            try:
                await loop.run_in_executor(
                    self._thread, write_part, table, self.parts_dir, self.worker, seq
                )
            except (OSError, pa.ArrowException) as exc:
                error = f"cannot write a records part in {self.parts_dir} ({exc})"
                if error != self.error:
                    log.error(
                        "worker %d: %s; holding %d records", self.worker, error, self.held_rows
                    )
                self.error = error
                return
            self._seq = seq
            self.written += table.num_rows
            self._held.pop(0)
            if self.error is not None:
                log.warning("worker %d: records parts are written again", self.worker)
                self.error = None

    def hand_over(self, send: Callable[[Unwritten], None]) -> int:
        """Send every held table to the main process (`send` is the pipe's); returns their rows."""
        rows = 0
        for table in self._held:
            send(("unwritten", table, self.error))
            rows += table.num_rows
        self._held.clear()
        return rows

    def close(self) -> None:
        """Wait for the writer thread to finish and end it."""
        self._thread.shutdown(wait=True)
