"""`python -m steps.simulator` flag handling, in-process: bad flags are one line and exit 2."""

from __future__ import annotations

import pytest

from steps.simulator.__main__ import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--port", "abc"],
            "--port: Input should be a valid integer, unable to parse string "
            "as an integer (got 'abc')",
        ),
        (
            ["--error-rate", "1.5"],
            "--error-rate: Input should be less than or equal to 1 (got '1.5')",
        ),
        (
            ["--max-num-seqs", "0"],
            "--max-num-seqs: Input should be greater than or equal to 1 (got '0')",
        ),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--port", "0", "--ssl-keyfile", "key.pem"], "--ssl-keyfile needs --ssl-certfile"),
        (["--port", "0", "--ssl-certfile", "/nonexistent/chain.pem"], "/nonexistent/chain.pem"),
    ],
)
def test_main_bad_flag_exits_2_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("simulator: ")
    assert expected in err
    assert "\n" not in err


def test_main_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
