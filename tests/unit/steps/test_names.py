"""steps.names: one run id rule for the load step that writes it and the report that stores it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from steps.names import check_run_id, new_run_id


def test_new_run_id_passes_check_and_sorts_by_time() -> None:
    earlier = new_run_id(datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    later = new_run_id(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    assert check_run_id(earlier) == earlier
    assert earlier.startswith("20261101T020000Z-") and earlier < later


@pytest.mark.parametrize("run_id", ["a" * 65, "", "../x", "-x", "a/b", "a b"])
def test_check_run_id_refuses_what_cannot_be_one_key_segment(run_id: str) -> None:
    with pytest.raises(ValueError, match=r"^run id .*max 64"):
        check_run_id(run_id)


def test_check_run_id_longest_accepted() -> None:
    assert check_run_id("a" * 64) == "a" * 64
