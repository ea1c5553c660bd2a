"""`python -m steps.readiness`: wait until the endpoint serves the model, then check the model
pods' zones; write the `served_model`, `zones` and `max_model_len` outputs.

Exit 0 ready; 1 not ready by the deadline or the Kubernetes check failed; 2 bad flags. The API
key comes from the environment variable named by `--api-key-env` and is only ever reported as
"set" / "not set". No completion is sent: the load step warms the server up itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from steps.cli import (
    add_log_level_flag,
    add_optional_flags,
    make_parser,
    optional_text,
    run_step,
    secret_from_env,
)
from steps.errors import BenchError, UsageError
from steps.http_oneshot import OneShotClient
from steps.kube_pods import KubeCredentials, find_credentials
from steps.names import ENV_NAME_PATTERN, check_base_url, check_model_name
from steps.outputs import write_outputs
from steps.readiness.probe import wait_ready
from steps.readiness.zones import check_zones
from steps.shared import (
    MAX_SECONDS,
    K8sCheck,
    StrictModel,
    ZoneAffinity,
    format_label_selector,
    parse_label_selector,
)

log = logging.getLogger("steps.readiness")

STEP = "readiness"


class ReadinessConfig(StrictModel):
    """Typed flags of the readiness step (field = flag with `-` for `_`)."""

    base_url: str = Field(description="server root, e.g. http://qwen3-vllm.default:8000")
    model_name: str = Field(description="model id that /v1/models must list")
    timeout: float = Field(
        default=600, gt=0, le=MAX_SECONDS, description="seconds to wait for readiness"
    )
    interval: float = Field(
        default=5,
        gt=0,
        le=MAX_SECONDS,
        description="longest seconds between polls (backoff starts at 1/8 of it)",
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_NAME_PATTERN,
        description="NAME of the environment variable holding the bearer token (never the token)",
    )
    target_labels: dict[str, str] = Field(
        default_factory=dict, description="model pods' labels, k=v,k2=v2 (the load step's affinity)"
    )
    target_namespace: str = Field(
        default="default", min_length=1, description="namespace of the model pods"
    )
    k8s_check: K8sCheck = Field(
        default=K8sCheck.auto,
        description="auto: check pods/zones when credentials exist; required: fail without; off",
    )
    zone_affinity: ZoneAffinity = Field(
        default=ZoneAffinity.required,
        description="the load pod's zone affinity as installed: with required, model pods on "
        "nodes without a zone label fail the check (the load pod could never be scheduled)",
    )
    outputs_dir: Path | None = Field(
        default=None, description="directory for the output-parameter files"
    )
    # The scenario's longest request (one name per knob: an exact scenario's lengths, or a
    # distribution's max): refused when it cannot fit the served context, before the load.
    input_tokens: int | None = Field(default=None, ge=1, description="exact prompt length")
    output_tokens: int | None = Field(default=None, ge=1, description="exact max_tokens")
    input_max: int | None = Field(default=None, ge=1, description="longest prompt (tokens)")
    output_max: int | None = Field(default=None, ge=1, description="largest max_tokens")

    _base_url_ok = field_validator("base_url")(check_base_url)
    _model_name_ok = field_validator("model_name")(check_model_name)


@dataclass(frozen=True)
class ReadinessResult:
    """The step's outputs; `max_model_len` None when the server does not report it."""

    served_model: str
    zones: tuple[str, ...]
    max_model_len: int | None

    def outputs(self) -> dict[str, str]:
        """Output-parameter values as Argo strings ("" = unknown)."""
        return {
            "served_model": self.served_model,
            "zones": ",".join(self.zones),
            "max_model_len": "" if self.max_model_len is None else str(self.max_model_len),
        }


def _plan_k8s_check(config: ReadinessConfig, creds: KubeCredentials | None) -> bool:
    """Decide up front (before a long wait) whether the Kubernetes check runs or fails."""
    if config.k8s_check is K8sCheck.off:
        log.info("Kubernetes check: off")
        return False
    if not config.target_labels:
        if config.k8s_check is K8sCheck.required:
            raise UsageError("--k8s-check required needs --target-labels (the model pods' labels)")
        log.info("Kubernetes check: skipped (no --target-labels)")
        return False
    if creds is None:
        if config.k8s_check is K8sCheck.required:
            raise BenchError(
                "--k8s-check required but no Kubernetes credentials: no in-cluster service "
                "account and no kubeconfig (KUBECONFIG or ~/.kube/config)"
            )
        log.info("Kubernetes check: skipped (no in-cluster service account or kubeconfig)")
        return False
    return True


def _model_pod_zones(config: ReadinessConfig, creds: KubeCredentials) -> tuple[str, ...]:
    """The Kubernetes check: zones of the Ready model pods, or a BenchError saying why the load
    pod could not be scheduled next to them."""
    log.info(
        "Kubernetes check: pods %r in namespace %r",
        format_label_selector(config.target_labels),
        config.target_namespace,
    )
    report = check_zones(creds, config.target_namespace, config.target_labels, config.zone_affinity)
    return report.zones


def check_fits(config: ReadinessConfig, model: str, max_model_len: int | None) -> None:
    """Refuse a scenario whose longest prompt plus longest answer exceeds the served context:
    every such request would fail (HTTP 400), after the GPU time was booked."""
    longest_in = config.input_max or config.input_tokens
    longest_out = config.output_max or config.output_tokens
    if max_model_len is None or longest_in is None or longest_out is None:
        return
    if longest_in + longest_out > max_model_len:
        raise UsageError(
            f"the scenario's longest request, {longest_in} input + {longest_out} output tokens "
            f"= {longest_in + longest_out}, exceeds max_model_len {max_model_len} of {model!r} "
            f"at {config.base_url}; lower the input/output lengths or serve a longer context"
        )


def run(
    config: ReadinessConfig,
    api_key: SecretStr | None = None,
    kube_credentials: KubeCredentials | None = None,
) -> ReadinessResult:
    """Wait for the endpoint, check zones; write the outputs."""
    run_k8s = _plan_k8s_check(config, kube_credentials)
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
    log.info(
        "waiting for %s to serve %r (timeout %g s, API key %s)",
        config.base_url,
        config.model_name,
        config.timeout,
        "set" if api_key else "not set",
    )
    client = OneShotClient(config.base_url.rstrip("/"), headers)
    model = wait_ready(client, config.model_name, config.timeout, config.interval)
    check_fits(config, model.id, model.max_model_len)
    zones: tuple[str, ...] = ()
    if run_k8s:
        assert kube_credentials is not None  # _plan_k8s_check returned True
        zones = _model_pod_zones(config, kube_credentials)
    result = ReadinessResult(model.id, zones, model.max_model_len)
    if config.outputs_dir is not None:
        write_outputs(config.outputs_dir, result.outputs())
    return result


def _parser() -> argparse.ArgumentParser:
    """The flags, one per ReadinessConfig field, its description as help."""
    parser = make_parser(
        "python -m steps.readiness",
        "Wait until an OpenAI-compatible endpoint serves the model; optional Kubernetes zone "
        "check.",
    )
    fields = ReadinessConfig.model_fields
    parser.add_argument("--base-url", required=True, help=fields["base_url"].description)
    parser.add_argument("--model-name", required=True, help=fields["model_name"].description)
    add_optional_flags(
        parser, ReadinessConfig, "timeout", "interval", "api_key_env", "target_namespace"
    )
    add_optional_flags(
        parser, ReadinessConfig, "input_tokens", "output_tokens", "input_max", "output_max"
    )
    # A string default goes through `type` too: no flag (or "") is no labels.
    parser.add_argument(
        "--target-labels",
        type=parse_label_selector,
        default="",
        help=fields["target_labels"].description,
    )
    for name, choices in (("k8s_check", K8sCheck), ("zone_affinity", ZoneAffinity)):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=fields[name].default.value,
            choices=[m.value for m in choices],
            help=fields[name].description,
        )
    parser.add_argument(
        "--outputs-dir", type=optional_text, default=None, help=fields["outputs_dir"].description
    )
    add_log_level_flag(parser)
    return parser


def _ready(config: ReadinessConfig) -> int:
    """Read the API key and Kubernetes credentials from the environment, run, print one line."""
    api_key = secret_from_env(os.environ, config.api_key_env, "--api-key-env")
    result = run(config, api_key, find_credentials(os.environ, Path.home()))
    outputs = result.outputs()
    print(
        f"ready: model {result.served_model!r}, zones {outputs['zones'] or 'unknown'}, "
        f"max_model_len {outputs['max_model_len'] or 'unknown'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, read the API key from the environment, run; errors -> one stderr line."""
    return run_step(STEP, _parser(), argv, ReadinessConfig, _ready)


if __name__ == "__main__":
    sys.exit(main())
