"""Output paths (render -o, run --out) that cannot be a directory: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.baseline import main


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["render", "-o", "{file}"], "-o {file}: cannot use it as a directory"),
        (["render", "--kind", "all", "-o", "{file}/sub"], "-o {file}/sub: cannot use it as a"),
        (["run", "--out", "{file}", "--duration", "5"], "--out {file}: cannot use it as a"),
    ],
)
def test_output_path_that_is_a_file_exit_2_one_line(
    tmp_path: Path, argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "taken.yaml"
    file.write_text("keep me\n")
    code = main([a.format(file=file) for a in argv], environ={})
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines()[-1].startswith(f"workflows.baseline: {flag.format(file=file)}"), err
    assert "Traceback" not in err
    assert file.read_text() == "keep me\n"
