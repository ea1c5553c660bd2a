"""https endpoints: the readiness and load steps against the real simulator serving TLS.

The certificate authority is made per session by `trustme` (a real CA and a server certificate
for 127.0.0.1); the steps are told to trust it the standard way, `SSL_CERT_FILE`, which both
the load step's own HTTP/1.1 client (`ssl.create_default_context`) and httpx honour. Without
it, verification must fail: every request becomes a connect_error row naming the reason, and
readiness fails with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trustme

from steps.load.__main__ import main as load_main
from steps.readiness.__main__ import main as readiness_main
from tests.fixtures.simulator import SimulatorHandle, StartSimulator
from tests.helpers.load_run import run_load, ttft_errors_ms


@pytest.fixture
def tls_simulator(simulator_factory: StartSimulator, tmp_path: Path) -> tuple[Any, Path]:
    """A simulator serving https with a fresh CA's certificate; returns it and the CA file."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, chain_file, key_file = (tmp_path / name for name in ("ca.pem", "chain.pem", "key"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    chain_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return simulator_factory(
        "--ttft-ms", "20", "--itl-ms", "2",
        "--ssl-certfile", str(chain_file), "--ssl-keyfile", str(key_file),
        wait_healthy=False,
    ), ca_file  # fmt: skip


def test_https_readiness_and_load_with_trusted_ca(
    tls_simulator: tuple[SimulatorHandle, Path],
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, ca_file = tls_simulator
    assert sim.base_url.startswith("https://127.0.0.1:")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    argv = ["--base-url", sim.base_url, "--model-name", sim.model, "--timeout", "20",
            "--interval", "0.2", "--outputs-dir", str(tmp_path / "ready")]  # fmt: skip
    assert readiness_main(argv) == 0
    sim.reset_truth()
    code, rows, run_json = run_load(
        tmp_path / "load", sim.base_url, qwen_tokenizer_dir,
        "--rate", "10", "--duration", "2", "--num-workers", "2", "--run-id", "tls",
    )  # fmt: skip
    assert code == 0
    assert [r["status"] for r in rows] == ["ok"] * 20
    assert {r["output_tokens"] for r in rows} == {128}
    assert {len(r["chunk_offsets_us"]) for r in rows} == {128}
    truth = sim.truth()
    assert len(truth) == 20
    errors = ttft_errors_ms(rows, truth, run_json["run_id"])
    # TLS adds decryption on both sides; typically a few ms here. The maximum is left loose:
    # one preemption on a loaded 2-core machine costs tens of ms.
    assert (errors > -1).all()
    assert float(np.median(abs(errors))) < 10
    assert float(abs(errors).max()) < 250


def test_https_untrusted_certificate_is_an_error_row_and_one_line(
    tls_simulator: tuple[SimulatorHandle, Path],
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, _ = tls_simulator
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    argv = ["--base-url", sim.base_url, "--model-name", sim.model, "--timeout", "1",
            "--interval", "0.5"]  # fmt: skip
    assert readiness_main(argv) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"readiness: {sim.base_url} not ready after 1 s")
    assert "/health: TLS certificate rejected ([SSL: CERTIFICATE_VERIFY_FAILED]" in line
    assert "set SSL_CERT_FILE to that CA's PEM" in line
    code, rows, _ = run_load(
        tmp_path / "load", sim.base_url, qwen_tokenizer_dir,
        "--rate", "4", "--duration", "1", "--num-workers", "1", "--model-name", sim.model,
    )  # fmt: skip
    assert code == 1
    assert [r["status"] for r in rows] == ["connect_error"] * 4
    assert all("CERTIFICATE_VERIFY_FAILED" in r["error"] for r in rows)


def test_https_model_lookup_trusts_the_same_ca_as_the_load_client(
    tls_simulator: tuple[SimulatorHandle, Path],
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no model name configured the load step asks /v1/models first: over https that
    lookup must trust SSL_CERT_FILE exactly as the streaming client does (issue 11 item 13)."""
    sim, ca_file = tls_simulator
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    config = tmp_path / "config.yml"
    exact = "{type: fixed, mean: 64, std_dev: 0, min: 64, max: 64}"
    config.write_text(
        f"load: {{stages: [{{rate: 4, duration: 1}}], num_workers: 1}}\n"
        f"server: {{base_url: '{sim.base_url}'}}\n"
        f"data: {{input_distribution: {exact}, output_distribution: {exact}}}\n"
    )
    out = tmp_path / "load"
    argv = ["--out", str(out), "--config", str(config), "--tokenizer-dir", str(qwen_tokenizer_dir)]
    assert load_main(argv) == 0
    assert json.loads((out / "run.json").read_text())["model"] == sim.model
