"""A records part that cannot be written is held, retried and finally handed to the main process,
never dropped (issue 10 item 2). The faults are real file-system errors: the part directory is
missing until the test creates it (what freeing a full disk looks like to the writer)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from pathlib import Path

import pyarrow.parquet as pq

from steps.load.run import keep_unwritten as _keep_unwritten
from steps.load.worker import WorkerSpec, _Worker
from steps.load.writer import RecordBuffer, write_part
from tests.helpers.load_records import T0, add_record


def _worker(parts_dir: Path) -> tuple[_Worker, object]:
    spec = WorkerSpec(
        worker=1, run_id="run", base_url="http://127.0.0.1:9", path="/v1/completions",
        headers={}, chat=False, stages=[], warmup=[], request_timeout_s=1.0,
        drain_timeout_s=1.0, max_concurrency=None, parts_dir=str(parts_dir),
        tokenizer_source="", tokenizer_token_env=None, tokenizer_trust_remote_code=False,
    )  # fmt: skip
    main_end, worker_end = mp.Pipe()
    worker = _Worker(spec, worker_end)
    worker.buffer = RecordBuffer("run", 1, T0, 1)
    return worker, main_end


def _records(parts_dir: Path) -> list[int]:
    return sorted(
        i
        for p in parts_dir.glob("*.part.parquet")
        for i in pq.read_table(p)["request_index"].to_pylist()
    )


def test_failed_part_write_keeps_records_until_a_later_flush_writes_them(tmp_path: Path) -> None:
    parts = tmp_path / "parts"  # missing: every write fails with ENOENT
    worker, _ = _worker(parts)
    assert worker.buffer is not None
    for i in range(3):
        add_record(worker.buffer, i, [1, 1])
    asyncio.run(worker._flush())
    add_record(worker.buffer, 3, [1, 1])
    asyncio.run(worker._flush())
    assert worker.records == 0 and sum(t.num_rows for t in worker.unwritten) == 4
    assert worker.write_error is not None and "No such file or directory" in worker.write_error
    parts.mkdir()
    asyncio.run(worker._flush())
    assert _records(parts) == [0, 1, 2, 3]
    assert worker.records == 4 and not worker.unwritten and worker.write_error is None


def test_records_no_part_took_are_handed_over_and_written_by_the_main_process(
    tmp_path: Path,
) -> None:
    worker, main_end = _worker(tmp_path / "missing")
    assert worker.buffer is not None
    for i in range(2):
        add_record(worker.buffer, i, [1, 1])
    asyncio.run(worker._flush())
    assert worker._hand_over_unwritten() == 2 and not worker.unwritten
    kind, table, error = main_end.recv()  # type: ignore[attr-defined]
    assert kind == "unwritten" and table.num_rows == 2 and "No such file" in error
    parts = tmp_path / "parts"
    parts.mkdir()
    own = RecordBuffer("run", 1, T0, 1)
    add_record(own, 7, [1, 1])
    write_part(own.take_table(), parts, 1, 1)  # the worker's own first part, before it failed
    assert _keep_unwritten([(1, table, error)], parts) == []
    assert _records(parts) == [0, 1, 7]  # the main process's part took no worker part's name
    reasons = _keep_unwritten([(1, table, error)], tmp_path / "still-missing")
    assert len(reasons) == 1 and reasons[0].startswith("2 records of worker 1 could not be written")
