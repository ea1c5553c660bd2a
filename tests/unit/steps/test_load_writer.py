"""steps.load.writer: column buffer -> part files -> merged records.parquet in the schema."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from annotated_types import Le

from steps.load.config import LoadConfig
from steps.load.writer import SCHEMA, RecordBuffer, merge_parts, write_part
from steps.records import RECORD_SCHEMA
from tests.helpers.load_records import T0, add_record


def test_record_buffer_table_times_relative_to_t0_and_offsets_in_us() -> None:
    buf = RecordBuffer("run", 3, T0, 1_700_000_000_000_000_000)
    add_record(buf, 2, [1, 1])
    row = buf.take_table().to_pylist()[0]
    assert row["scheduled_ns"] == 2_000_000
    assert row["sent_ns"] == 2_000_500
    assert row["first_token_ns"] == 52_000_500
    assert row["chunk_offsets_us"] == [50_000, 60_000]
    assert row["chunk_tokens"] == [1, 1]
    assert row["worker"] == 3 and row["wall_start_ns"] == 1_700_000_000_000_000_000
    assert len(buf) == 0


def test_record_buffer_unknown_chunk_tokens_null_and_error_rows_kept() -> None:
    buf = RecordBuffer("run", 0, T0, 1)
    add_record(buf, 0, None)
    add_record(buf, 1, None, status="http_error")
    rows = buf.take_table().to_pylist()
    assert rows[0]["chunk_tokens"] is None
    assert rows[1]["status"] == "http_error"
    assert rows[1]["first_token_ns"] is None
    assert rows[1]["chunk_offsets_us"] == []


def test_merge_parts_sorted_schema_superset_parts_removed(tmp_path: Path) -> None:
    for worker, indices in ((0, [4, 0]), (1, [3, 1])):
        buf = RecordBuffer("run", worker, T0, 1)
        for i in indices:
            add_record(buf, i, [1, 1])
        write_part(buf.take_table(), tmp_path, worker, 1)
    out = tmp_path / "records.parquet"
    assert merge_parts(tmp_path, out) == 4
    table = pq.read_table(out)
    assert table.column("request_index").to_pylist() == [0, 1, 3, 4]
    for field in RECORD_SCHEMA:
        assert table.schema.field(field.name).type == field.type
    assert table.schema == SCHEMA
    assert not list(tmp_path.glob("*.part.parquet"))


def test_merge_parts_unfinished_part_of_killed_worker_removed(tmp_path: Path) -> None:
    parts = tmp_path / "records.parts"
    parts.mkdir()
    buf = RecordBuffer("run", 0, T0, 1)
    add_record(buf, 0, [1, 1])
    write_part(buf.take_table(), parts, 0, 1)
    (parts / "w001-000002.part.tmp").write_bytes(b"PAR1 cut short")  # no footer: unreadable
    assert merge_parts(parts, tmp_path / "records.parquet") == 1
    parts.rmdir()  # empty: the run can remove it


def test_merge_parts_no_parts_writes_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "records.parquet"
    assert merge_parts(tmp_path, out) == 0
    assert pq.read_table(out).num_rows == 0


def test_merge_parts_offsets_delta_encoded_without_dictionary(tmp_path: Path) -> None:
    buf = RecordBuffer("run", 0, T0, 1)
    for i in range(3):
        add_record(buf, i, [1, 1])
    write_part(buf.take_table(), tmp_path, 0, 1)
    out = tmp_path / "records.parquet"
    merge_parts(tmp_path, out)
    meta = pq.ParquetFile(out).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    offsets = columns["chunk_offsets_us.list.element"]
    assert "DELTA_BINARY_PACKED" in offsets.encodings
    assert not offsets.has_dictionary_page
    assert columns["status"].has_dictionary_page  # the other columns keep their dictionaries
    assert pq.read_table(out).column("chunk_offsets_us").to_pylist() == [[50000, 60000]] * 3


def test_record_buffer_error_text_scrubbed_of_secrets() -> None:
    key = "my-endpoint-key-0123456789"
    buf = RecordBuffer("run", 0, T0, 1, secrets=(key,))
    add_record(buf, 0, None, status="http_error")
    add_record(
        buf, 1, None, status="http_error", http_status=401,
        error=f"HTTP 401: bad key {key} (hf_abcdefghijklmnopqrstuvwx)",
    )  # fmt: skip
    errors = buf.take_table().column("error").to_pylist()
    assert errors[0] == "HTTP 503: busy"
    assert key not in errors[1] and "hf_abc" not in errors[1]
    assert errors[1].startswith("HTTP 401: bad key ")


def _add_from_server(buf: RecordBuffer, index: int, **server: object) -> None:
    """One ok request whose server-controlled values are overridden by `server`."""
    values: dict[str, object] = {"prompt_tokens": 512, "output_tokens": 2, "http_status": 200}
    values.update(server)
    tokens = values.pop("chunk_tokens", [1, 1])
    add_record(buf, index, tokens, mismatch=False, **values)  # type: ignore[arg-type]


def test_out_of_range_server_values_fail_their_own_request_only(tmp_path: Path) -> None:
    """usage >= 2^31, prompt_tokens >= 2^63, an HTTP status > 32767 or a chunk's token count
    beyond int16 used to abort the whole part's Arrow conversion (issue 10 item 3)."""
    buf = RecordBuffer("run", 0, T0, 1)
    _add_from_server(buf, 0)
    _add_from_server(buf, 1, output_tokens=2**31)
    _add_from_server(buf, 2, prompt_tokens=2**63)
    _add_from_server(buf, 3, http_status=40000)
    _add_from_server(buf, 4, chunk_tokens=[1, -40000])
    _add_from_server(buf, 5)
    write_part(buf.take_table(), tmp_path, 0, 1)
    rows = pq.read_table(tmp_path / "w000-000001.part.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok", *["protocol_error"] * 4, "ok"]
    assert rows[1]["output_tokens"] is None and rows[1]["prompt_tokens"] == 512
    assert rows[1]["error"] == (
        f"output_tokens value {2**31} is outside the column's range [-2147483648, 2147483647]"
    )
    assert rows[2]["prompt_tokens"] is None and str(2**63) in rows[2]["error"]
    assert rows[3]["http_status"] is None and "http_status value 40000" in rows[3]["error"]
    assert rows[4]["chunk_tokens"] is None and "chunk_tokens value -40000" in rows[4]["error"]
    assert rows[5]["output_tokens"] == 2 and rows[5]["chunk_tokens"] == [1, 1]


def _upper_bound(field: str) -> float:
    """The `le` bound pydantic enforces on a load config field."""
    (le,) = [m.le for m in LoadConfig.model_fields[field].metadata if isinstance(m, Le)]
    assert isinstance(le, int | float)
    return float(le)


def test_longest_allowed_request_fits_chunk_offsets(tmp_path: Path) -> None:
    """A stream as long as request_timeout (or drain_timeout) allows, plus a late timer, is an
    ok row: int32 µs offsets overflow at 35.8 min, and a week-long timeout made such a stream a
    protocol_error blaming the server (the column may not be retyped)."""
    longest_ns = round(max(_upper_bound("request_timeout"), _upper_bound("drain_timeout")) * 1e9)
    buf = RecordBuffer("run", 0, T0, 1)
    sent = T0
    late_timer_ns = 40 * 1_000_000_000
    _add_from_server(buf, 0)
    add_record(
        buf, 1, [1, 1], mismatch=False, scheduled_ns=sent, sent_ns=sent,
        end_ns=sent + longest_ns + late_timer_ns,
        chunk_ns=[sent + 50_000_000, sent + longest_ns + late_timer_ns],
    )  # fmt: skip
    write_part(buf.take_table(), tmp_path, 0, 1)
    row = pq.read_table(tmp_path / "w000-000001.part.parquet").to_pylist()[1]
    assert row["status"] == "ok", row["error"]
    assert row["chunk_offsets_us"] == [50_000, (longest_ns + late_timer_ns) // 1000]
