"""readiness flags: bad values are one line and exit 2 before any request is sent."""

from __future__ import annotations

import pytest

from steps.readiness.__main__ import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--timeout", "inf"], "readiness: --timeout: Input should be a finite number"),
        (["--timeout", "nan"], "readiness: --timeout: Input should be a finite number"),
        (["--timeout", "1e300"], "readiness: --timeout: Input should be less than or equal to"),
        (["--interval", "inf"], "readiness: --interval: Input should be a finite number"),
        (["--model-name", "../../etc"], "readiness: --model-name: model name '../../etc' must"),
        (["--base-url", "http://h:8000/?api_key=SECRET-1"], "readiness: --base-url: base_url must"),
        (["--base-url", "http://h:8000/a b"], "readiness: --base-url: base_url must not contain"),
        (["--base-url", "localhost:8000"], "readiness: --base-url: base_url must be http(s)://"),
        (["--timeout", "-1"], "readiness: --timeout: Input should be greater than 0 (got '-1')"),
        (["--k8s-check", "maybe"], "readiness: argument --k8s-check: invalid choice: 'maybe'"),
        (["--target-labels", "app"], "readiness: --target-labels: 'app' is not key=value"),
    ],
)
def test_readiness_bad_flag_exit_2_one_line(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--base-url", "http://127.0.0.1:9", "--model-name", "m", "--k8s-check", "off"]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message), err
    assert "\n" not in err and "SECRET-1" not in err
