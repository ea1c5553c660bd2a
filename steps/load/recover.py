"""`python -m steps.load merge --out DIR`: recover a load run whose main process was lost.

Workers write part files as they go and the main process writes run.json at t0, marked
incomplete, so a killed main process (OOM, SIGKILL, a lost node) leaves `DIR/records.parts/`
and a run.json that says the run never finished. This merges the parts into records.parquet and
fills in run.json's counts. The run stays `complete: false`: nobody saw it end, so aggregate
and report show what was measured and the verdict fails.

run.json can be missing although parts exist: the main process is lost between stage 0's go
message and the first run.json write, or that write fails (a full disk). The parts are merged
all the same (nothing measured is dropped) and run.json is written from what the records say:
run id and t0, no stages, no scheduled count, and the reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps.cli import add_log_level_flag, configure_logging, make_parser, run_main
from steps.errors import UsageError
from steps.load.run_file import write_run_file
from steps.load.writer import PART_SUFFIX, merge_parts
from steps.records import PARTS_DIR, RECORDS_FILE, RUN_FILE, merge_command

__all__ = ["main", "recover"]


_NO_RUN_FILE = (
    f"{RUN_FILE} was missing (the main process was lost before writing it, or could not write "
    "it): the schedule, stage windows and scheduled count are unknown"
)


def _read_run(out_dir: Path) -> dict[str, Any] | None:
    """The load step's run.json, or None when there is none (a damaged one is refused)."""
    path = out_dir / RUN_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"--out {out_dir}: {RUN_FILE} is not readable ({exc}); move it away to merge the "
            "parts without it"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list):
        raise UsageError(f"--out {out_dir}: {RUN_FILE} is not the load step's (no stages list)")
    return doc


def _run_from_records(records: Path) -> dict[str, Any]:
    """A run.json for records whose own was never written: the run id and t0 they carry."""
    first = pq.ParquetFile(records).read_row_group(0, columns=["run_id", "wall_start_ns"])
    return {
        "run_id": first["run_id"][0].as_py(),
        "wall_start_ns": first["wall_start_ns"][0].as_py(),
        "stages": [],
        "scheduled_requests": None,
        "interrupted": None,
        "lost_workers": [],
    }


def _close_stages(stages: list[Any], records: Path) -> None:
    """A stage the run never closed ends at its last record's end (or its send window's)."""
    table = pq.read_table(records, columns=["stage", "end_ns"])
    for row in stages:
        if row.get("end_ns") is not None:
            continue
        ends = table.filter(pc.equal(table["stage"], row["stage"]))["end_ns"]
        last = pc.max(ends).as_py() if len(ends) else None
        row["end_ns"] = max(last or 0, row["send_end_ns"] or 0)
        if row["send_end_ns"] is None:  # closed loop: its users sent until it ended
            row["send_end_ns"] = row["end_ns"]


def _check_recoverable(out_dir: Path) -> Path:
    """`out_dir`'s parts directory, refused when there is nothing to merge or a merge would
    count records twice."""
    parts_dir = out_dir / PARTS_DIR
    if not any(parts_dir.glob(f"*{PART_SUFFIX}")):
        raise UsageError(f"--out {out_dir}: no part files in {PARTS_DIR}/ to merge")
    if (out_dir / RECORDS_FILE).exists():
        raise UsageError(
            f"--out {out_dir}: {RECORDS_FILE} exists beside {PARTS_DIR}/; move one of them away "
            "(merging both could count records twice)"
        )
    return parts_dir


def _reasons(found: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """Why the recovered run is incomplete, from the run.json found (None: there was none)."""
    if found is None:
        reasons = [_NO_RUN_FILE]
    elif found.get("recorded_requests") is None:  # run.json as written mid-run: nobody saw the end
        reasons = ["the load step's main process was lost before it merged the part files"]
    else:  # the step ended but could not merge (a full disk): its reasons stand
        reasons = list(found.get("incomplete_reasons") or [])
    reasons.append(f"part files merged afterwards by `{merge_command(out_dir)}`")
    return reasons


def recover(out_dir: Path) -> tuple[int, int | None]:
    """Merge `out_dir`'s orphaned parts; returns (records, scheduled requests or None)."""
    parts_dir = _check_recoverable(out_dir)
    found = _read_run(out_dir)
    rows = merge_parts(parts_dir, out_dir / RECORDS_FILE)
    parts_dir.rmdir()
    doc = found if found is not None else _run_from_records(out_dir / RECORDS_FILE)
    _close_stages(doc["stages"], out_dir / RECORDS_FILE)
    scheduled = doc.get("scheduled_requests")
    reasons = _reasons(found, out_dir)  # before the update: `found` is `doc`
    doc.update(
        complete=False,
        recorded_requests=rows,
        missing_requests=scheduled - rows if isinstance(scheduled, int) else None,
        incomplete_reasons=reasons,
    )
    write_run_file(out_dir, doc)
    return rows, scheduled


def main(argv: Sequence[str]) -> int:
    """Entry point of `python -m steps.load merge`; exit 0 merged, 1 write failed, 2 usage."""

    def body() -> int:
        parser = make_parser("steps.load merge", __doc__.splitlines()[0] if __doc__ else None)
        parser.add_argument("--out", required=True, type=Path, help="the load step's --out DIR")
        add_log_level_flag(parser)
        args = parser.parse_args(argv)
        configure_logging("load", args.log_level)
        rows, scheduled = recover(args.out)
        print(
            f"load merge: {rows} of {scheduled if scheduled is not None else '?'} scheduled "
            f"requests recorded in {args.out / RECORDS_FILE}; run.json marks the run incomplete",
            file=sys.stderr,
        )
        return 0

    return run_main("load merge", body)
